"""``qvi evaluate``: rank held-out references by imitations, for models, rankings and baselines.

Queries are the dataset's recorded imitations when it has them (real voices: a ``pairs``
folder such as ../shared/real-imitations-dev, or VimSketch...), else simulated ones (seeded, in
their own seed namespace). References are embedded whole, as the index does; queries are
trimmed as the app trims a recording. Each encoder embeds everything once; a *system* is a
ranking over those embeddings (one encoder's cosine, or several fused, with or without the
hubness correction: :mod:`qvi_app.ranking`). Results are given in two settings, the
references alone and (``distractors``) the references among a whole library of other sounds,
the situation of a user, and per query group (generation 1 and 2 of the real imitations),
each with item/class MRR, top-k, NDCG and hubness.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qvi_app.app import prepare_query
from qvi_app.audio import isolate_sound, load_audio
from qvi_app.data import open_dataset
from qvi_app.data.simulate import SimulatorSettings, imitation_seed, simulate_imitation
from qvi_app.encoders import load_encoder
from qvi_app.encoders.checkpoint import checkpoint_field, encoder_name_of, load_checkpoint
from qvi_app.errors import AudioError, QviError
from qvi_app.evaluation.metrics import hubness, paired_difference, random_mrr, retrieval_report
from qvi_app.ranking import RankingSettings, fused_scores, hub_penalty

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
    ids = set(saved.get(split) or ())
    if not ids:
        raise EvaluationError(f"{split_from} holds no {split} references (a soup holds out only sounds none of "
                              "its runs trained on); use --split all on data the model never saw")
    refs = [r for r in dataset.references if r.id in ids]
    if len(refs) < len(ids):
        raise EvaluationError(f"{len(ids) - len(refs)} of the {split} references of {split_from} are not in "
                              f"{dataset.root}; evaluate on the dataset the model was trained on")
    return refs


def build_queries(refs, *, imitations: int, seed: int, sim: SimulatorSettings, progress: bool):
    """(waveform, sr, reference index, group) for every query, the references' audio, and unreadable files.

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
            groups = ref.groups or ("all",) * len(ref.imitations)
            for path, group in zip(ref.imitations, groups):
                try:
                    queries.append((*load_audio(path), i, group))
                except AudioError as exc:
                    bad.append(f"{path}: {exc.reason}")
        elif not any(r.imitations for r in refs):
            source = "simulated"
            trimmed = isolate_sound(wave, sr)
            for k in range(imitations):
                queries.append((simulate_imitation(trimmed, sr, imitation_seed(ref.id, k, "eval", seed), sim),
                                sim.sample_rate, i, "all"))
    return queries, ref_audio, kept, bad, source


@dataclass
class System:
    """A ranking to evaluate, and which weights each of its learned encoders uses."""

    ranking: RankingSettings
    checkpoints: dict[str, Path | None] = field(default_factory=dict)

    def encoder_keys(self) -> list[tuple[str, Path | None]]:
        return [(name, self.checkpoints.get(name)) for name in self.ranking.encoders]


def default_systems(models: dict[str, Path] | None, baselines: bool, rankings: dict[str, dict] | None = None
                    ) -> tuple[dict[str, System], dict[str, str]]:
    """The systems to evaluate (label → System) and those skipped (label → why)."""
    from qvi_app.encoders.passt import hub_weights_path
    from qvi_app.paths import BUNDLED_CNN, ZERO_SHOT_CNN

    systems: dict[str, System] = {}
    for label, ckpt in (models or {"qvi cnn (bundled)": BUNDLED_CNN}).items():
        name = encoder_name_of(ckpt)
        plain = RankingSettings(encoders=(name,))
        systems[label] = System(plain, {name: Path(ckpt)})
        carried = checkpoint_field(ckpt, "ranking")           # the ranking a search with this model uses
        ranking = RankingSettings.from_dict(carried) if carried is not None else plain
        if ranking != plain:
            systems[f"{label}, {ranking.describe()}"] = System(ranking, {n: Path(ckpt) for n in ranking.encoders
                                                                         if n != "2dft"})
    first = next(iter((models or {"": BUNDLED_CNN}).values()))
    for label, spec in (rankings or {}).items():
        ranking = RankingSettings.from_dict(spec)
        systems[label] = System(ranking, {n: Path(first) for n in ranking.encoders if n != "2dft"})
    skipped = {}
    if baselines:
        systems["zero-shot aisfx cnn"] = System(RankingSettings(encoders=("cnn",)), {"cnn": ZERO_SHOT_CNN})
        systems["CQT + 2DFT"] = System(RankingSettings(encoders=("2dft",)))
        if hub_weights_path().is_file():
            systems["zero-shot PaSST"] = System(RankingSettings(encoders=("passt",)))
        else:
            skipped["zero-shot PaSST"] = f"its weights are not at {hub_weights_path()} (see docs/TRAINING.md)"
    return systems, skipped


def load_distractors(folder, progress: bool) -> tuple[list[tuple[np.ndarray, int]], list[str], list[str], list[str]]:
    """Audio, categories and relative paths of a library's sounds, and its unreadable files."""
    from qvi_app.index.scan import scan_library

    folder = Path(folder)
    audio, cats, names, bad = [], [], [], []
    for f in tqdm(scan_library(folder), desc="distractors", unit="file", disable=not progress, leave=False):
        try:
            audio.append(load_audio(folder / f.relpath))
        except AudioError as exc:
            bad.append(f"{f.relpath}: {exc.reason}")
            continue
        cats.append(f.category)
        names.append(f.relpath)
    return audio, cats, names, bad


def evaluate(data, *, dataset_kind: str = "auto", split: str = "all", split_from=None,
             models: dict[str, Path] | None = None, baselines: bool = True, imitations: int = 2, seed: int = 0,
             progress: bool = True, distractors=None, rankings: dict[str, dict] | None = None) -> dict:
    """Metrics for each system on one set of queries and candidates; see :mod:`.metrics`."""
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
    groups = {"all": np.arange(len(queries))}
    for g in sorted({q[3] for q in queries} - {"all"}):
        groups[g] = np.array([i for i, q in enumerate(queries) if q[3] == g])
    extra_audio, extra_cats, extra_names = [], [], []
    if distractors is not None:
        extra_audio, extra_cats, extra_names, bad = load_distractors(distractors, progress)
        bad_files += bad
    settings = {"references": len(refs)}
    if extra_audio:
        settings["with distractors"] = len(refs) + len(extra_audio)

    systems, skipped = default_systems(models, baselines, rankings)
    embedded, ids, ms, banks = {}, {}, {}, {}
    for key in dict.fromkeys(k for system in systems.values() for k in system.encoder_keys()):
        enc = load_encoder(*key)
        ids[key] = enc.id
        banks[key] = enc.query_banks().get(enc.name)
        bar = tqdm(total=len(refs) + len(extra_audio) + len(queries), desc=enc.id, unit="clip",
                   disable=not progress, leave=False)
        t_enc = time.perf_counter()

        def run(items, role, trim=False):
            out = []
            for wave, sr, *_ in items:          # prepared as a search and the index prepare them
                out.append(enc.embed(prepare_query(wave, sr) if trim else isolate_sound(wave, sr), sr, role=role))
                bar.update()
            return np.stack(out) if out else np.zeros((0, enc.dim), np.float32)

        embedded[key] = {"R": run(ref_audio, "reference"), "D": run(extra_audio, "reference"),
                         "Q": run(queries, "query", trim=True)}
        ms[key] = (time.perf_counter() - t_enc) * 1e3 / (len(refs) + len(extra_audio) + len(queries))
        bar.close()

    results = {}
    candidate_cats = {"references": cats, "with distractors": cats + extra_cats}
    for label, system in systems.items():
        keys = system.encoder_keys()
        entry = {"ranking": system.ranking.describe(), "encoder_ids": [ids[k] for k in keys],
                 "ms_per_clip": sum(ms[k] for k in keys), "settings": {}}
        for setting in settings:
            per_encoder, penalties = {}, {}
            for name, key in zip(system.ranking.encoders, keys):
                e = embedded[key]
                cand = e["R"] if setting == "references" else np.concatenate([e["R"], e["D"]])
                per_encoder[name] = e["Q"] @ cand.T
                if system.ranking.hub_bank == "library":
                    penalties[name] = hub_penalty(cand, cand, system.ranking.hub_k, exclude_self=True)
                elif system.ranking.hub_bank == "queries" and banks[key] is not None:
                    penalties[name] = hub_penalty(cand, banks[key], system.ranking.hub_k)
            if system.ranking.hub_bank == "queries" and len(penalties) != len(keys):
                skipped[label] = "its ranking needs a query bank that its model does not carry"
                break
            scores = fused_scores(per_encoder, system.ranking, penalties)
            entry["settings"][setting] = _grouped(scores, targets, query_cats, candidate_cats[setting], groups)
        else:
            entry.update(entry["settings"]["references"]["all"])
            results[label] = entry
    if baselines:
        rng = np.random.default_rng(seed)
        entry = {"ranking": "random", "settings": {}}
        for setting, n in settings.items():
            entry["settings"][setting] = _grouped(rng.random((len(queries), n)), targets, query_cats,
                                                  candidate_cats[setting], groups)
        entry.update(entry["settings"]["references"]["all"])
        results["random"] = entry
    return {
        "data": str(Path(data)), "dataset_kind": dataset.kind, "split": split,
        "split_from": str(split_from) if split_from else None, "references": len(refs),
        "categories": len(set(cats)), "queries": len(queries), "query_source": source,
        "groups": {g: len(idx) for g, idx in groups.items()},
        "targets": {g: targets[idx].tolist() for g, idx in groups.items()},   # the imitated sound of each query
        "distractors": {"folder": str(distractors), "sounds": len(extra_audio)} if extra_audio else None,
        "candidates": [r.id for r in refs] + list(extra_names),     # by column: who a hub is
        "imitations_per_reference": imitations if source == "simulated" else None, "seed": seed,
        "random_expected_mrr": random_mrr(len(refs)),
        "encoder_ids": {label: r["encoder_ids"] for label, r in results.items() if "encoder_ids" in r},
        "systems": results, "skipped": skipped, "unreadable_files": bad_files,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _grouped(scores, targets, query_cats, candidate_cats, groups) -> dict:
    out = {}
    for g, idx in groups.items():
        rep = retrieval_report(scores[idx], targets[idx], [query_cats[i] for i in idx], candidate_cats)
        rep["hubness"] = hubness(scores[idx], 10)
        out[g] = rep
    return out


def _hub_line(report: dict, setting: str, shown: list[tuple[str, dict]]) -> list[str]:
    """Each system's hub among the distractors, by name: whether a wolf call or the imitated
    sound itself comes back for every query is what the hubness figure alone does not say."""
    names = report.get("candidates")
    hubs = [(label, x["hubness"]) for label, x in shown if x.get("hubness", {}).get("candidate") is not None]
    if setting == "references" or not names or not hubs:
        return []
    return ["", "Most often in the top 10 of these queries: " + "; ".join(
        f"{label}: {names[h['candidate']]} ({h['max_share']:.0%})" for label, h in hubs) + "."]


def _interval(ci) -> str:
    return f"{ci[0]:.3f}–{ci[1]:.3f}" if ci else "–"


def _versus(x: dict, first: dict | None, targets) -> str:
    """This system's item MRR against the first row's, query by query (:func:`paired_difference`),
    resampling the imitated sounds (``targets``) when the report has them."""
    if first is None or "item_ranks" not in x or "item_ranks" not in first:
        return "–"
    d = paired_difference(x["item_ranks"], first["item_ranks"], targets)
    return f"{d['mrr_diff']:+.3f} ({d['ci95'][0]:+.3f} to {d['ci95'][1]:+.3f}; {d['share_better']:.0%})"


def to_markdown(report: dict) -> str:
    lines = [f"**{report['data']}** ({report['dataset_kind']}, split `{report['split']}`): "
             f"{report['references']} references in {report['categories']} categories, "
             f"{report['queries']} {report['query_source']} imitations as queries"
             + (f" ({', '.join(f'{g}: {n}' for g, n in report['groups'].items() if g != 'all')})"
                if len(report.get("groups", {})) > 1 else "") + ".", ""]
    settings = list(next(iter(report["systems"].values())).get("settings", {"references": None}))
    groups = list(report.get("groups", {"all": report["queries"]}))
    for setting in settings:
        for group in groups:
            if len(settings) > 1 or len(groups) > 1:
                n = report["references"] if setting == "references" else report["references"] + report["distractors"]["sounds"]
                where = ("against the references alone" if setting == "references" else
                         f"among {report['distractors']['sounds']} distractors ({report['distractors']['folder']})")
                lines += [f"**{'all queries' if group == 'all' else group}, {where}** ({n} candidates):", ""]
            lines += ["| system | item MRR | 95% interval | vs the first row | top-1 | top-5 | top-10 | class MRR | NDCG "
                      "| hubness@10 | ms per clip |", "|---|---|---|---|---|---|---|---|---|---|---|"]
            first, targets, shown = None, report.get("targets", {}).get(group), []
            for label, r in report["systems"].items():
                x = r["settings"][setting][group] if "settings" in r else r
                i, c = x["item"], x["class"]
                hub = f"{x['hubness']['max_share']:.2f}" if "hubness" in x else "–"
                lines.append(f"| {label} | {i['mrr']:.3f} | {_interval(i.get('mrr_ci95'))} | {_versus(x, first, targets)} | "
                             f"{i['top1']:.3f} | {i['top5']:.3f} | {i['top10']:.3f} | {c['mrr']:.3f} | {x['ndcg']:.3f} | "
                             f"{hub} | " + (f"{r['ms_per_clip']:.0f} |" if "ms_per_clip" in r else "– |"))
                shown.append((label, x))
                first = first or x
            lines += _hub_line(report, setting, shown)
            lines.append("")
    lines += ["95% interval: where the item MRR could lie on another set of sounds and imitations like "
              "these (bootstrap resampling the imitated sounds, each with all its imitations). vs the first "
              "row: this system's item MRR minus the first row's on the same queries, its 95% interval and "
              "the share of resamples in which it is ahead; a difference whose interval holds 0 is not "
              "shown by these queries.", "",
              "ms per clip: embedding time per clip (audio already decoded; references whole, queries "
              f"trimmed) on this machine ({os.cpu_count()} cores), all encoders of the system. hubness@10: the "
              "largest share of queries for which one candidate is in the top 10."]
    rankings = {label: r["ranking"] for label, r in report["systems"].items() if r.get("ranking") not in (None, "random")}
    if rankings:
        lines += ["", "Rankings: " + "; ".join(f"{label}: {how}" for label, how in rankings.items()) + "."]
    lines += [f"\nSkipped {name}: {why}." for name, why in report.get("skipped", {}).items()]
    if report.get("unreadable_files"):
        lines += ["", f"Left out {len(report['unreadable_files'])} unreadable file(s): "
                  + "; ".join(report["unreadable_files"][:10])]
    lines += ["", f"Random ranking of the references alone, expected item MRR: {report['random_expected_mrr']:.3f}."]
    lines += _category_table(report, "references", "references alone")
    if "with distractors" in settings:
        lines += _category_table(report, "with distractors", f"among {report['distractors']['sounds']} distractors")
    return "\n".join(lines) + "\n"


def _category_table(report: dict, setting: str, where: str) -> list[str]:
    """Item MRR per category for every system, all queries: which imitated sound a change moves
    (with one reference per category, as real-dev has, a row is one sound)."""
    systems = {label: r["settings"][setting]["all"] if "settings" in r else r for label, r in report["systems"].items()}
    lines = ["", f"Item MRR per category ({where}, all queries):", "",
             "| category | queries | " + " | ".join(systems) + " |", "|---|---|" + "---|" * len(systems)]
    for cat, row in next(iter(systems.values()))["categories"].items():
        lines.append(f"| {cat} | {row['queries']} | " + " | ".join(f"{x['categories'][cat]['mrr']:.3f}"
                                                                for x in systems.values()) + " |")
    return lines


def write_reports(report: dict, out_prefix) -> tuple[Path, Path]:
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    js, md = out_prefix.with_suffix(".json"), out_prefix.with_suffix(".md")
    js.write_text(json.dumps(report, indent=2) + "\n")
    md.write_text(to_markdown(report))
    return js, md
