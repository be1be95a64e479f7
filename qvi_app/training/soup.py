"""A weight soup: several training runs of one recipe averaged into one model (Wortsman et al. 2022).

Why: on real voices one run of a recipe is a lottery. Nine runs of ``qvi train`` that differ only
in ``--seed`` span 0.080-0.120 item MRR among the demo library (real-dev gen-1) and 0.567-0.667
against the 10 references; the uniform average of their weights scores 0.132 and 0.674, above
every one of them on both, at the cost of one model at search time (docs/TRAINING.md row 48).
A replicate of twelve longer runs gained less (+0.010 and +0.013 over their mean, row 49): a
soup makes the outcome steadier, not much better.
Averaging only makes sense for runs that started from the same weights, the head's random ones
included: train them with the same ``head_seed`` (``--set head_seed=0``).
"""

from __future__ import annotations

from pathlib import Path

from qvi_app.encoders.checkpoint import load_checkpoint, save_checkpoint
from qvi_app.errors import QviError


class SoupError(QviError):
    pass


def _run(path: Path) -> dict:
    ckpt = load_checkpoint(path)
    training = ckpt.get("training")
    if not (isinstance(training, dict) and isinstance(training.get("config"), dict)
            and isinstance(training.get("init"), dict)):
        raise SoupError(f"{path}: not a qvi train run (no training record); only runs of qvi train can be averaged")
    return ckpt


def head_start(run: dict):
    """The seed a run's head was drawn from: its ``head_seed``, or with -1 (the default, and every
    run before 0.11) its ``--seed``, which ``qvi train`` sets just before drawing the head."""
    cfg = run["training"]["config"]
    head_seed = cfg.get("head_seed", -1)
    return head_seed if isinstance(head_seed, int) and head_seed >= 0 else cfg.get("seed")


def make_soup(paths, out) -> dict:
    """Write the element-wise mean of the weights of the runs at ``paths`` to ``out``.

    Refused (nothing written) unless every run holds the same kind of model with the same settings
    and started from the same weights: the same starting checkpoint and head (:func:`head_start`).
    Returns what was written."""
    paths, out = [Path(p) for p in paths], Path(out)
    if len(paths) < 2:
        raise SoupError("a soup needs at least two runs")
    if any(out.resolve() == p.resolve() for p in paths if p.exists()):
        raise SoupError(f"{out} is one of the runs; the soup would overwrite it (choose another output)")
    runs = [_run(p) for p in paths]
    first = runs[0]
    first_head = head_start(first)
    first_shapes = {k: tuple(v.shape) for k, v in first["state_dict"].items()}
    for p, r in zip(paths, runs):
        if head_start(r) != first_head:
            raise SoupError(f"{p}: its head started from seed {head_start(r)}, {paths[0]}'s from seed "
                            f"{first_head}; runs to be averaged must start alike: train each with the same "
                            "--set head_seed=0")
        if r["encoder"] != first["encoder"] or r["settings"] != first["settings"]:
            raise SoupError(f"{p}: its model settings differ from {paths[0]}'s; only runs of one recipe can be averaged")
        if r["training"]["init"].get("digest") != first["training"]["init"].get("digest"):
            raise SoupError(f"{p}: started from other weights than {paths[0]} "
                            f"({r['training']['init'].get('digest')} vs {first['training']['init'].get('digest')})")
        if {k: tuple(v.shape) for k, v in r["state_dict"].items()} != first_shapes:
            raise SoupError(f"{p}: its weights do not match {paths[0]}'s tensor for tensor")

    state = {}
    for k, v in first["state_dict"].items():
        if v.is_floating_point():
            state[k] = (sum(r["state_dict"][k].double() for r in runs) / len(runs)).to(v.dtype)
        else:                       # counters (batch-norm's num_batches_tracked): not averaged
            state[k] = v.clone()

    # The soup learned from every sound any run trained on; only sounds no run saw stay held out.
    splits = [r.get("split") or {} for r in runs]
    trained = set().union(*(s.get("train", []) for s in splits))
    held = {part: sorted(set.intersection(*(set(s.get(part, [])) for s in splits)) - trained)
            for part in ("val", "test")}
    split = {"train": sorted(trained), **held}
    members = [{"checkpoint": str(p), "digest": r["digest"], "seed": r["training"]["config"].get("seed"),
                "best": r["training"].get("best")} for p, r in zip(paths, runs)]
    provenance = dict(first.get("provenance") or {})
    provenance["title"] = f"{provenance.get('title', 'qvi model')}, soup of {len(runs)} runs"
    training = {"soup": members, "config": first["training"]["config"], "init": first["training"]["init"]}
    save_checkpoint(out, encoder=first["encoder"], version=first["version"], settings=first["settings"],
                    state_dict=state, provenance=provenance, split=split, training=training)
    return {"runs": len(runs), "seeds": [m["seed"] for m in members], "out": out}
