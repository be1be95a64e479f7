"""``qvi inspect``: look at and listen to what the training pipeline feeds the encoder.

Writes to a folder: ``stats.json`` (shapes, value ranges, NaN and silence checks, category
balance of each split), ``pairs.png`` (reference / imitation features, clean and augmented,
from the front end the model being trained uses), and WAVs: each simulated imitation as
rendered, and Griffin-Lim reconstructions of the augmented log-mels of both sides (cnn front
end; PaSST's mel has no inverse here).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from qvi_app.encoders.model import start_model
from qvi_app.features.invert import logmel_to_wave
from qvi_app.features.logmel import LogMelFrontEnd
from qvi_app.training.augment import AugmentSettings
from qvi_app.training.config import TrainConfig
from qvi_app.training.loop import training_references
from qvi_app.training.pairs import PairSource, make_batch


def tensor_stats(x: torch.Tensor) -> dict:
    flat = x.reshape(len(x), -1)
    return {"shape": list(x.shape), "min": float(x.min()), "max": float(x.max()), "mean": float(x.mean()),
            "std": float(x.std()), "nan": int(torch.isnan(x).sum()), "inf": int(torch.isinf(x).sum()),
            "silent_items": int((flat.amax(dim=1) <= 1e-6).sum()),
            "zero_fraction": float((x == 0).float().mean())}


def inspect(cfg: TrainConfig, out_dir, n_pairs: int = 6, progress: bool = True) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frontend = start_model(cfg.backbone, cfg.init, cfg.towers, cfg.head_hidden)[0].frontend   # what training feeds
    settings = frontend.settings
    refs, dropped, split = training_references(cfg)
    by_id = {r.id: r for r in refs}
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    chosen = [by_id[i] for i in rng.choice(split["train"], size=min(n_pairs, len(split["train"])), replace=False)]
    src = PairSource(chosen, settings.sample_rate, n_simulated=1, namespace="train", seed=cfg.seed,
                     max_seconds=cfg.max_seconds, sim=cfg.simulator, progress=progress)
    idx = list(range(len(src)))
    clean_imi, clean_ref = make_batch(src, idx, frontend, np.random.default_rng(cfg.seed), AugmentSettings.off(),
                                      cfg.clip_seconds)
    aug_imi, aug_ref = make_batch(src, idx, frontend, np.random.default_rng(cfg.seed), cfg.augment, cfg.clip_seconds)

    balance = {name: dict(sorted(Counter(by_id[i].category for i in ids).items())) for name, ids in split.items()}
    stats = {"data": list(cfg.data), "references": len(refs), "excluded_duplicates": dropped,
             "split_sizes": {k: len(v) for k, v in split.items()}, "category_balance": balance,
             "recorded_imitations": any(r.imitations for r in refs), "skipped": src.skipped,
             "batch": {"reference_clean": tensor_stats(clean_ref), "imitation_clean": tensor_stats(clean_imi),
                       "reference_augmented": tensor_stats(aug_ref), "imitation_augmented": tensor_stats(aug_imi)},
             "augment": cfg.augment.to_dict(), "pairs": [p.ref.id for p in src.pairs]}
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    _plot_pairs(src, [clean_ref, aug_ref, clean_imi, aug_imi], out / "pairs.png", settings)
    for i, pair in enumerate(src.pairs):
        sf.write(out / f"pair{i}_imitation.wav", np.asarray(pair.imitations[0], np.float32), pair.imitation_sr)
        if isinstance(frontend, LogMelFrontEnd):   # other front ends (PaSST's mel) have no inverse here
            sf.write(out / f"pair{i}_reference_griffinlim.wav", logmel_to_wave(aug_ref[i, 0], settings),
                     settings.sample_rate)
            sf.write(out / f"pair{i}_imitation_griffinlim.wav", logmel_to_wave(aug_imi[i, 0], settings),
                     settings.sample_rate)
    return stats


def _plot_pairs(src, batches, path: Path, settings) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = ["reference", "reference, augmented", "imitation", "imitation, augmented"]
    n = len(src.pairs)
    fig, axes = plt.subplots(n, 4, figsize=(13, 2.0 * n + 0.5), squeeze=False)
    seconds = batches[0].shape[2] / settings.frames_per_second
    low, high = (float(torch.quantile(batches[0].flatten()[:100_000], q)) for q in (0.01, 0.99))
    for row, pair in enumerate(src.pairs):
        for col, batch in enumerate(batches):
            ax = axes[row, col]
            ax.imshow(batch[row, 0].T.numpy(), origin="lower", aspect="auto", vmin=low, vmax=high,
                      extent=(0, seconds, 0, batch.shape[3]), cmap="magma")
            ax.set_title(f"{titles[col]}: {Path(pair.ref.id).stem[:28]}" if col == 0 else titles[col], fontsize=8)
            ax.tick_params(labelsize=7)
            if col == 0:
                ax.set_ylabel("mel band", fontsize=7)
            if row == n - 1:
                ax.set_xlabel("seconds", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
