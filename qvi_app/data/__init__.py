"""Training and evaluation data: dataset readers, reference splits, the imitation simulator."""

from qvi_app.data.datasets import DATASET_KINDS, QbvDataset, Reference, open_dataset, open_datasets
from qvi_app.data.split import split_references

__all__ = ["DATASET_KINDS", "QbvDataset", "Reference", "open_dataset", "open_datasets", "split_references"]
