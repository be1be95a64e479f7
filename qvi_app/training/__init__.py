"""Fine-tuning the dual encoder: augmentation, training pairs, NT-Xent, the training loop."""
