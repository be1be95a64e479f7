"""``qvi train``: fine-tune the dual encoder with NT-Xent on (imitation, reference) pairs.

Seeded; checkpoint = weights + front-end settings + split + config in one file (the best
validation MRR so far); a training-state file beside it makes ``--resume`` continue where an
interrupted run stopped; early stopping on validation MRR; a CSV log and a PNG plot per epoch.
"""

from __future__ import annotations

import csv
import errno
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from qvi_app.audio import resample
from qvi_app.data import open_datasets, split_references
from qvi_app.data.split import audio_fingerprint
from qvi_app.encoders.model import DualEncoder, Model, save_model, start_model
from qvi_app.encoders.model import backbone as backbone_row
from qvi_app.errors import QviError
from qvi_app.evaluation.metrics import retrieval_report
from qvi_app.training.config import TrainConfig
from qvi_app.training.loss import nt_xent
from qvi_app.training.pairs import PairSource, make_batch

LOG_FIELDS = ("epoch", "train_loss", "val_loss", "val_mrr", "val_top1", "val_class_mrr", "temperature", "seconds")


class TrainingError(QviError):
    """Training cannot start or continue (no data, a mismatched resume state, ...)."""


@dataclass
class TrainResult:
    checkpoint: Path
    best_epoch: int
    best_val_mrr: float
    start_val_mrr: float
    epochs_run: int
    seconds: float
    log_csv: Path
    plot_png: Path | None


def state_path(out: Path) -> Path:
    return out.with_name(out.name + ".state")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda asked for, but torch sees no CUDA device")
    return torch.device(name)


def set_trainable(network: DualEncoder, freeze_blocks: int) -> None:
    """Freeze the first blocks; batch-norm statistics stay as pretrained (eval mode)."""
    network.eval()
    for backbone in network.backbones():
        for i, block in enumerate(backbone.blocks):
            for p in block.parameters():
                p.requires_grad_(i >= freeze_blocks)


@torch.no_grad()
def embed_waves(network: DualEncoder, frontend: torch.nn.Module, waves, role: str, device) -> torch.Tensor:
    """Embeddings (N, dim) of (waveform, rate) pairs; each brought to the front end's rate."""
    rate = frontend.settings.sample_rate
    out = [network(frontend(torch.from_numpy(np.ascontiguousarray(resample(w, sr, rate), np.float32))).to(device),
                   role)[0].cpu() for w, sr in waves]
    return torch.stack(out)


def validate(model, frontend, source: PairSource, temperature: float, device) -> dict:
    """Every imitation of every validation reference ranked against all validation references."""
    refs = embed_waves(model, frontend, [(p.reference, p.reference_sr) for p in source.pairs], "reference", device)
    imis, targets = [], []
    for i, p in enumerate(source.pairs):
        imis += [(w, p.imitation_sr) for w in p.imitations]
        targets += [i] * len(p.imitations)
    q = embed_waves(model, frontend, imis, "query", device)
    scores = (q @ refs.T).numpy()
    cats = [p.ref.category for p in source.pairs]
    report = retrieval_report(scores, np.array(targets), [cats[t] for t in targets], cats)
    logits = torch.from_numpy(scores) / temperature
    report["loss"] = float(torch.nn.functional.cross_entropy(logits, torch.tensor(targets)))
    return report


def dedupe_against(refs, library) -> tuple[list, list[str]]:
    """Drop references whose decoded audio also occurs in ``library`` (so evaluating there stays honest)."""
    from qvi_app.audio import load_audio
    from qvi_app.index.scan import scan_library

    library = Path(library)
    seen = set()
    for f in scan_library(library):
        try:
            seen.add(audio_fingerprint(load_audio(library / f.relpath)[0]))
        except QviError:
            continue
    keep, dropped = [], []
    for r in refs:
        try:
            duplicate = audio_fingerprint(load_audio(r.path)[0]) in seen
        except QviError:
            duplicate = False                     # unreadable: PairSource reports it
        if duplicate:
            dropped.append(r.id)
        else:
            keep.append(r)
    return keep, dropped


def training_references(cfg: TrainConfig) -> tuple[list, list[str], dict[str, list[str]]]:
    """The dataset's references less duplicates of ``cfg.exclude_library``, the ids dropped, and
    the seeded split: what ``qvi train`` trains on and ``qvi inspect`` shows. Rated pairs from
    ``cfg.feedback`` join the training split (never validation or test, so those stay comparable)."""
    refs, dropped = open_datasets(cfg.data, cfg.dataset).references, []
    if cfg.exclude_library:
        refs, dropped = dedupe_against(refs, cfg.exclude_library)
    split = split_references(refs, cfg.seed, cfg.val_fraction, cfg.test_fraction)
    rated = feedback_references(cfg.feedback)
    split["train"] = sorted(split["train"] + [r.id for r in rated])
    return refs + rated, dropped, split


def feedback_references(sources) -> list:
    """Liked (query, result) pairs of feedback databases or exported CSVs as references with
    recorded imitations: each liked sound, with every saved query a user liked it for."""
    import csv as csv_module

    from qvi_app.data.datasets import Reference
    from qvi_app.feedback import FeedbackStore

    liked: dict[str, set[str]] = {}
    for source in sources:
        path = Path(source)
        if not path.is_file():
            raise TrainingError(f"feedback not found: {path} (a feedback.sqlite or a CSV qvi exported)")
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8") as f:
                rows = [(r.get("query_path", ""), r.get("result_path", ""), r.get("rating", "")) for r in csv_module.DictReader(f)]
            if rows and not all(rows[0]):
                raise TrainingError(f"{path}: not a qvi feedback export (query_path, result_path, rating columns)")
        else:
            store = FeedbackStore(path)
            rows = [(r.query_path, r.result_path, str(r.rating)) for r in store.ratings()]
            store.close()
        for query, result, rating in rows:
            if rating.strip() in ("1", "+1") and Path(query).is_file() and Path(result).is_file():
                liked.setdefault(result, set()).add(query)
    return [Reference(f"feedback/{i:05d}/{Path(result).name}", Path(result), Path(result).parent.name or "feedback",
                      tuple(Path(q) for q in sorted(queries)))
            for i, (result, queries) in enumerate(sorted(liked.items()))]


def starting_model(cfg: TrainConfig) -> tuple[Model, dict]:
    """The model a run starts from (:func:`start_model`). With ``cfg.head_seed`` >= 0 the head's
    random weights are drawn from that seed, apart from the run's own random stream, so runs with
    different ``--seed`` start from identical weights and can be averaged (:mod:`.soup`); with
    -1 they come from the run's stream, as before 0.11."""
    if cfg.head_seed < 0:
        return start_model(cfg.backbone, cfg.init, cfg.towers, cfg.head_hidden)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.head_seed)
        return start_model(cfg.backbone, cfg.init, cfg.towers, cfg.head_hidden)


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True) -> TrainResult:
    t_start = time.perf_counter()
    out = Path(cfg.out)
    device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    state = None
    if resume:
        if not state_path(out).is_file():
            raise TrainingError(f"nothing to resume: {state_path(out)} does not exist (start without --resume)")
        state = read_state(state_path(out))
        if _with_defaults(state["config"]) != cfg.to_dict():
            raise TrainingError(f"{state_path(out)} was written with other settings; resume with the same "
                                "config, or start afresh without --resume")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    try:
        built, init = starting_model(cfg)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    frontend = built.frontend                 # features are made on the CPU, then moved to ``device``
    settings = frontend.settings
    refs, dropped, split = training_references(cfg)
    by_id = {r.id: r for r in refs}
    if state:
        split = state["split"]
        if not all(isinstance(ids, list) and set(ids) <= set(by_id) for ids in split.values()):
            raise TrainingError(f"{state_path(out)}: its split names sounds that are not in {', '.join(cfg.data)}; "
                                "start afresh without --resume")
    train_refs = [by_id[i] for i in split["train"]]
    val_refs = [by_id[i] for i in split["val"]]
    if len(train_refs) < 2 or not val_refs:
        raise TrainingError(f"{', '.join(cfg.data)}: {len(train_refs)} training and {len(val_refs)} validation references; "
                            "need at least 2 and 1 (add sounds or change the fractions)")

    sr = settings.sample_rate
    train_src = PairSource(train_refs, sr, n_simulated=cfg.simulated_per_reference, namespace="train",
                           seed=cfg.seed, max_seconds=cfg.max_seconds, sim=cfg.simulator, progress=progress)
    val_src = PairSource(val_refs, sr, n_simulated=cfg.val_imitations, namespace="val", seed=cfg.seed,
                         max_seconds=cfg.max_seconds, sim=cfg.simulator, progress=progress)

    model = built.network.to(device)
    log_t = torch.nn.Parameter(torch.tensor(math.log(cfg.temperature), device=device),
                               requires_grad=cfg.learn_temperature)
    set_trainable(model, cfg.freeze_blocks)
    head_params = [p for n, p in model.named_parameters() if "head" in n]
    body_params = [p for n, p in model.named_parameters() if "head" not in n and p.requires_grad]
    groups = [{"params": head_params, "lr": cfg.lr_head}, {"params": body_params, "lr": cfg.lr_backbone}]
    if cfg.learn_temperature:
        groups.append({"params": [log_t], "lr": cfg.lr_head, "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)

    log_csv = out.with_suffix(".log.csv")
    rows, start_epoch, best, bad_epochs = [], 1, None, 0
    if state:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            log_t.data.fill_(state["log_t"])
            rng.bit_generator.state = state["rng"]
            torch.set_rng_state(state["torch_rng"])
        except (RuntimeError, ValueError, TypeError, KeyError) as exc:
            raise TrainingError(f"{state_path(out)} does not fit this model ({str(exc).splitlines()[0][:200]}); "
                                "start afresh without --resume") from None
        rows, start_epoch, best, bad_epochs = state["rows"], state["epoch"] + 1, state["best"], state["bad_epochs"]
    else:
        v = validate(model, frontend, val_src, float(log_t.detach().exp()), device)
        rows.append(_row(0, float("nan"), v, float(log_t.detach().exp()), 0.0))
        best = {"epoch": 0, "val_mrr": v["item"]["mrr"]}
        _save(out, built, cfg, init, split, dropped, best, rows, train_src, val_src)
    _guard_write(log_csv, lambda: _write_log(log_csv, rows))

    meta = {"train_pairs": len(train_src), "val_pairs": len(val_src)}
    epoch = start_epoch - 1
    for epoch in range(start_epoch, cfg.epochs + 1):
        if bad_epochs >= cfg.patience:
            break
        t0 = time.perf_counter()
        order = rng.permutation(len(train_src))
        n_batches = max(1, len(order) // cfg.batch_size)
        losses = []
        bar = tqdm(range(n_batches), desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", disable=not progress,
                   leave=False)
        for b in bar:
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            imi, ref = make_batch(train_src, idx, frontend, rng, cfg.augment, cfg.clip_seconds)
            q = model(imi.to(device), "query")
            r = model(ref.to(device), "reference")
            loss = nt_xent(q, r, log_t.exp())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                log_t.clamp_(math.log(0.01), math.log(1.0))
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(losses):.3f}")
        bar.close()
        v = validate(model, frontend, val_src, float(log_t.detach().exp()), device)
        rows.append(_row(epoch, float(np.mean(losses)), v, float(log_t.detach().exp()), time.perf_counter() - t0))
        if v["item"]["mrr"] > best["val_mrr"]:
            best, bad_epochs = {"epoch": epoch, "val_mrr": v["item"]["mrr"]}, 0
            _save(out, built, cfg, init, split, dropped, best, rows, train_src, val_src)
        else:
            bad_epochs += 1
        _guard_write(log_csv, lambda: _write_log(log_csv, rows))
        if progress:
            tqdm.write(f"epoch {epoch}: loss {rows[-1]['train_loss']:.3f}  val MRR {v['item']['mrr']:.3f} "
                       f"(best {best['val_mrr']:.3f} @ {best['epoch']})  τ {float(log_t.detach().exp()):.3f}  "
                       f"{rows[-1]['seconds']:.0f} s")
        state = {"config": cfg.to_dict(), "split": split, "model": model.state_dict(),
                 "optimizer": optimizer.state_dict(), "log_t": float(log_t.detach()), "rows": rows, "epoch": epoch,
                 "best": best, "bad_epochs": bad_epochs, "rng": rng.bit_generator.state,
                 "torch_rng": torch.get_rng_state(), **meta}
        _guard_write(state_path(out), lambda: _atomic_save(state, state_path(out)))
    plot = plot_log(rows, out.with_suffix(".log.png"))
    return TrainResult(out, best["epoch"], best["val_mrr"], rows[0]["val_mrr"], epoch,
                       time.perf_counter() - t_start, log_csv, plot)


#: What a training-state file holds, and the type of each entry (checked before use).
STATE_FIELDS = {"config": dict, "split": dict, "model": dict, "optimizer": dict, "log_t": float, "rows": list,
                "epoch": int, "best": dict, "bad_epochs": int, "rng": dict, "torch_rng": torch.Tensor}


def _with_defaults(config: dict) -> dict | None:
    """A saved config with the settings added since it was written at their defaults (their
    defaults keep earlier behaviour: head_seed -1 is 0.10's draw), so an interrupted run resumes
    after an upgrade; None if it names settings this version does not know."""
    try:
        return TrainConfig.from_dict(config).to_dict()
    except (TypeError, ValueError):
        return None


def read_state(path: Path) -> dict:
    """A training-state file, read without running code (``weights_only``) and checked."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # an unpickling refusal, a truncated file, not a torch file at all
        raise TrainingError(f"{path}: not a usable training state ({exc.__class__.__name__}: "
                            f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); start afresh without --resume") from None
    wrong = [k for k, t in STATE_FIELDS.items() if not isinstance(state, dict) or not isinstance(state.get(k), t)] \
        if isinstance(state, dict) else list(STATE_FIELDS)
    if wrong:
        raise TrainingError(f"{path}: damaged training state ({', '.join(wrong)} missing or of the wrong type); "
                            "start afresh without --resume")
    return state


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _row(epoch, train_loss, v, temperature, seconds) -> dict:
    return {"epoch": epoch, "train_loss": train_loss, "val_loss": v["loss"], "val_mrr": v["item"]["mrr"],
            "val_top1": v["item"]["top1"], "val_class_mrr": v["class"]["mrr"], "temperature": temperature,
            "seconds": seconds}


def _write_log(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, LOG_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.5f}" if isinstance(r[k], float) else r[k]) for k in LOG_FIELDS})


def _save(out, model: Model, cfg, init, split, dropped, best, rows, train_src, val_src) -> None:
    provenance = dict(init.get("provenance", {}))
    provenance["title"] = (f"qvi {backbone_row(cfg.backbone).label} "
                           f"(fine-tuned on {len(train_src):,} sounds, {time.strftime('%b %Y')})")
    provenance["fine_tuned"] = (f"NT-Xent on {len(train_src)} references of {', '.join(cfg.data)} "
                                f"({'recorded' if any(p.ref.imitations for p in train_src.pairs) else 'simulated'} "
                                f"imitations), qvi {cfg.version}")
    _guard_write(out, lambda: save_model(
        out, model, cfg.version, provenance=provenance, split=split,
        training={"config": cfg.to_dict(), "best": best, "log": rows, "excluded_duplicates": dropped,
                  "skipped": train_src.skipped + val_src.skipped,
                  "init": {"version": init["version"], "digest": init["digest"]}}))


def _guard_write(path: Path, write) -> None:
    """Run ``write``; a full disk or an unwritable folder becomes one clear message."""
    try:
        write()
    except OSError as exc:
        full = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
        raise TrainingError(f"cannot write {path}: {exc.strerror or exc}{full}; the last saved checkpoint "
                            "and training state are unchanged") from None


def plot_log(rows: list[dict], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r["epoch"] for r in rows]
    fig, ax1 = plt.subplots(figsize=(7, 4))
    ax1.plot(ep, [r["train_loss"] for r in rows], "o-", label="train loss (NT-Xent)")
    ax1.plot(ep, [r["val_loss"] for r in rows], "s--", label="validation loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax2 = ax1.twinx()
    ax2.plot(ep, [r["val_mrr"] for r in rows], "^-", color="tab:green", label="validation MRR")
    ax2.set_ylabel("MRR")
    ax2.set_ylim(0, 1)
    lines = ax1.get_lines() + ax2.get_lines()
    ax1.legend(lines, [ln.get_label() for ln in lines], loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
