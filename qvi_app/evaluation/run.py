"""``qvi evaluate``: rank held-out references by imitations, for a model and its baselines.

Queries are the dataset's recorded imitations when it has them, else simulated ones (seeded,
in their own seed namespace). References are embedded whole, as the index does; queries are
trimmed as the app trims a recording. Systems: the model(s) asked for, the zero-shot aisfx
backbone, CQT+2DFT and a random ranking, all on the same queries and candidates.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qvi_app.app import prepare_query
from qvi_app.audio import load_audio, trim_silence
from qvi_app.data import open_dataset
from qvi_app.data.simulate import SimulatorSettings, simulate_imitation
from qvi_app.encoders import load_encoder
from qvi_app.encoders.checkpoint import encoder_name_of, load_checkpoint
from qvi_app.errors import AudioError, QviError
from qvi_app.evaluation.metrics import random_mrr, retrieval_report
from qvi_app.training.pairs import imitation_seed

SPLITS = ("test", "val", "train", "all")


class EvaluationError(QviError):
    """The evaluation cannot run as asked (no split saved, no references, ...)."""


def select_references(dataset, split: str, split_from) -> list:
    if split == "all":
        return dataset.references
    if split_from is None:
        raise EvaluationError(f"--split {split} needs a checkpoint that saved its split (--split-from); "
                              "or use --split all on data the model never saw")
    saved = load_checkpoint(split_from).get("split")
    if not saved:
        raise EvaluationError(f"{split_from} has no saved split (it was not trained by qvi); use --split all")
    ids = set(saved[split])
    refs = [r for r in dataset.references if r.id in ids]
    if len(refs) < len(ids):
        raise EvaluationError(f"{len(ids) - len(refs)} of the {split} references of {split_from} are not in "
                              f"{dataset.root}; evaluate on the dataset the model was trained on")
    return refs


def build_queries(refs, *, imitations: int, seed: int, sim: SimulatorSettings, progress: bool):
    """(waveform, sr, reference index) for every query, the references' audio, and unreadable files.

    A reference that cannot be read is dropped with its imitations; an unreadable imitation is
    dropped alone. Both are listed, so one bad file does not end a long evaluation.
    """
    queries, ref_audio, kept, bad, source = [], [], [], [], "recorded"
    for ref in tqdm(refs, desc="queries", unit="ref", disable=not progress, leave=False):
        try:
            wave, sr = load_audio(ref.path)
        except AudioError as exc:
            bad.append(f"{ref.id}: {exc.reason}")
            continue
        i = len(kept)
        kept.append(ref)
        ref_audio.append((wave, sr))
        if ref.imitations:
            for path in ref.imitations:
                try:
                    queries.append((*load_audio(path), i))
                except AudioError as exc:
                    bad.append(f"{path}: {exc.reason}")
        else:
            source = "simulated"
            trimmed = trim_silence(wave, sr)
            for k in range(imitations):
                queries.append((simulate_imitation(trimmed, sr, imitation_seed(ref.id, k, "eval", seed), sim),
                                sim.sample_rate, i))
    return queries, ref_audio, kept, bad, source


def evaluate(data, *, dataset_kind: str = "auto", split: str = "all", split_from=None,
             models: dict[str, Path] | None = None, baselines: bool = True, imitations: int = 2, seed: int = 0,
             progress: bool = True) -> dict:
    """Metrics for each system on one set of queries and candidates; see :mod:`.metrics`."""
    from qvi_app.paths import BUNDLED_CNN, ZERO_SHOT_CNN

    t0 = time.perf_counter()
    dataset = open_dataset(data, dataset_kind)
    refs = select_references(dataset, split, split_from)
    if len(refs) < 2:
        raise EvaluationError(f"only {len(refs)} reference(s) to rank; need at least 2")
    sim = SimulatorSettings()
    queries, ref_audio, refs, bad_files, source = build_queries(refs, imitations=imitations, seed=seed, sim=sim,
                                                                progress=progress)
    if len(refs) < 2 or not queries:
        raise EvaluationError(f"{len(refs)} readable references and {len(queries)} queries; nothing to rank")
    targets = np.array([q[2] for q in queries])
    cats = [r.category for r in refs]
    query_cats = [cats[t] for t in targets]

    systems: dict[str, tuple[str, object]] = {}
    for label, ckpt in (models or {"qvi cnn (bundled)": BUNDLED_CNN}).items():
        systems[label] = (encoder_name_of(ckpt), ckpt)
    skipped = {}
    if baselines:
        from qvi_app.encoders.passt import hub_weights_path

        systems["zero-shot aisfx cnn"] = ("cnn", ZERO_SHOT_CNN)
        systems["CQT + 2DFT"] = ("2dft", None)
        if hub_weights_path().is_file():
            systems["zero-shot PaSST"] = ("passt", None)
        else:
            skipped["zero-shot PaSST"] = f"its weights are not at {hub_weights_path()} (see docs/TRAINING.md)"

    results, ids = {}, {}
    for label, (name, ckpt) in systems.items():
        enc = load_encoder(name, ckpt)
        ids[label] = enc.id
        bar = tqdm(total=len(refs) + len(queries), desc=label, unit="clip", disable=not progress, leave=False)
        t_sys = time.perf_counter()
        ref_vecs = []
        for wave, sr in ref_audio:
            ref_vecs.append(enc.embed(wave, sr, role="reference"))
            bar.update()
        q_vecs = []
        for wave, sr, _ in queries:
            q_vecs.append(enc.embed(prepare_query(wave, sr), sr, role="query"))
            bar.update()
        bar.close()
        ms_per_clip = (time.perf_counter() - t_sys) * 1e3 / (len(refs) + len(queries))
        scores = np.stack(q_vecs) @ np.stack(ref_vecs).T
        results[label] = {**retrieval_report(scores, targets, query_cats, cats), "ms_per_clip": ms_per_clip}
    if baselines:
        rng = np.random.default_rng(seed)
        results["random"] = retrieval_report(rng.random((len(queries), len(refs))), targets, query_cats, cats)
    return {
        "data": str(Path(data)), "dataset_kind": dataset.kind, "split": split,
        "split_from": str(split_from) if split_from else None, "references": len(refs),
        "categories": len(set(cats)), "queries": len(queries), "query_source": source,
        "imitations_per_reference": imitations if source == "simulated" else None, "seed": seed,
        "random_expected_mrr": random_mrr(len(refs)), "encoder_ids": ids, "systems": results, "skipped": skipped, "unreadable_files": bad_files,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def to_markdown(report: dict) -> str:
    lines = [f"**{report['data']}** ({report['dataset_kind']}, split `{report['split']}`): "
             f"{report['references']} references in {report['categories']} categories, "
             f"{report['queries']} {report['query_source']} imitations as queries.", "",
             "| system | item MRR | top-1 | top-5 | top-10 | class MRR | class top-1 | NDCG | ms per clip |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, r in report["systems"].items():
        i, c = r["item"], r["class"]
        lines.append(f"| {label} | {i['mrr']:.3f} | {i['top1']:.3f} | {i['top5']:.3f} | {i['top10']:.3f} | "
                     f"{c['mrr']:.3f} | {c['top1']:.3f} | {r['ndcg']:.3f} | "
                     + (f"{r['ms_per_clip']:.0f} |" if "ms_per_clip" in r else "– |"))
    lines += ["", "ms per clip: embedding time per clip (audio already decoded; references whole, queries "
              f"trimmed) on this machine ({os.cpu_count()} cores)."]
    lines += [f"\nSkipped {name}: {why}." for name, why in report.get("skipped", {}).items()]
    if report.get("unreadable_files"):
        lines += ["", f"Left out {len(report['unreadable_files'])} unreadable file(s): "
                  + "; ".join(report["unreadable_files"][:10])]
    lines += ["", f"Random ranking, expected item MRR: {report['random_expected_mrr']:.3f}.", "",
              "Item MRR per category:", "",
              "| category | queries | " + " | ".join(report["systems"]) + " |",
              "|---|---|" + "---|" * len(report["systems"])]
    first = next(iter(report["systems"].values()))
    for cat, row in first["categories"].items():
        vals = " | ".join(f"{r['categories'][cat]['mrr']:.3f}" for r in report["systems"].values())
        lines.append(f"| {cat} | {row['queries']} | {vals} |")
    return "\n".join(lines) + "\n"


def write_reports(report: dict, out_prefix) -> tuple[Path, Path]:
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    js, md = out_prefix.with_suffix(".json"), out_prefix.with_suffix(".md")
    js.write_text(json.dumps(report, indent=2) + "\n")
    md.write_text(to_markdown(report))
    return js, md
