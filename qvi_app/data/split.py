"""Seeded split of a dataset's references into train / validation / test.

Splitting is by reference (never by imitation), stratified by category, so no validation or
test reference, nor any imitation of one, is seen in training.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np

from qvi_app.data.datasets import Reference


def split_references(refs: list[Reference], seed: int, val_fraction: float = 0.1,
                     test_fraction: float = 0.1) -> dict[str, list[str]]:
    """{'train', 'val', 'test'} → sorted reference ids. Each category with ≥ 3 references gives
    at least one to validation and to test when those fractions are non-zero."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction and test_fraction must be in [0, 1) and sum to under 1")
    rng = np.random.default_rng(seed)
    by_cat: dict[str, list[str]] = defaultdict(list)
    for r in sorted(refs, key=lambda r: r.id):
        by_cat[r.category].append(r.id)
    out = {"train": [], "val": [], "test": []}
    for cat in sorted(by_cat):
        ids = [by_cat[cat][i] for i in rng.permutation(len(by_cat[cat]))]
        n = len(ids)
        n_val = max(1, round(n * val_fraction)) if val_fraction and n >= 3 else round(n * val_fraction)
        n_test = max(1, round(n * test_fraction)) if test_fraction and n >= 3 else round(n * test_fraction)
        out["val"] += ids[:n_val]
        out["test"] += ids[n_val:n_val + n_test]
        out["train"] += ids[n_val + n_test:]
    return {k: sorted(v) for k, v in out.items()}


def audio_fingerprint(wave: np.ndarray) -> str:
    """Content hash of decoded audio (16-bit quantised), for finding the same sound in two folders."""
    pcm = np.round(np.clip(np.asarray(wave, np.float32), -1, 1) * 32767).astype("<i2")
    return hashlib.sha256(pcm.tobytes()).hexdigest()
