#!/usr/bin/env python
"""Compare simulated vocal imitations with real ones: what people do that the simulator does not.

Measures each imitation (trimmed as the app trims a query) with the simulator's own frame
analysis (10 ms frames at 16 kHz) and draws the distributions side by side:

- duration, and its ratio to the imitated reference's duration;
- voiced share: frames with autocorrelation periodicity ≥ 0.6, among frames within 35 dB of
  the loudest (the active frames);
- pitch: median f0 of voiced frames, and its range (10th to 90th percentile, semitones);
- brightness (median spectral centroid) and noisiness (median spectral flatness);
- onsets per second (level rises of 15 dB within 30 ms);
- gaps: share of frames inside the imitation more than 35 dB under its peak (pauses between
  syllables), and the noise floor (10th-percentile frame level, dB under the peak);
- the average spectral envelope (log-mel, level-normalised).

    python scripts/compare_imitations.py ../shared/real-imitations-dev --out docs/imitations-real-vs-simulated.png

The real imitations are only measured here, never trained on. Simulated imitations are made
of the same references, ``--per-reference`` each, with the simulator settings given by
``--set name=value`` (fields of SimulatorSettings), so a change can be compared before training.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from qvi_app.app import prepare_query  # noqa: E402
from qvi_app.audio import load_audio, resample, trim_silence  # noqa: E402
from qvi_app.data.simulate import SimulatorSettings, analyse, simulate_imitation  # noqa: E402

SR = 16000
STATS = ("duration_s", "duration_ratio", "voiced_share", "f0_median_hz", "f0_range_semitones", "centroid_hz",
         "flatness", "onsets_per_s", "gap_share", "noise_floor_db")


def measure(wave: np.ndarray, sr: int, ref_duration: float) -> tuple[dict, np.ndarray]:
    """The statistics of one imitation, and its level-normalised log spectrum envelope (64 bands)."""
    wave = resample(prepare_query(wave, sr), sr, SR)
    t = analyse(wave, SR)
    active = t.level_db > -35
    voiced = active & (t.periodicity >= 0.6)
    f0 = t.f0_hz[voiced]
    out = {
        "duration_s": len(wave) / SR,
        "duration_ratio": len(wave) / SR / ref_duration,
        "voiced_share": float(voiced.sum() / max(active.sum(), 1)),
        "f0_median_hz": float(np.median(f0)) if len(f0) >= 5 else np.nan,
        "f0_range_semitones": float(12 * np.log2(np.percentile(f0, 90) / np.percentile(f0, 10))) if len(f0) >= 5
        else np.nan,
        "centroid_hz": float(np.median(t.centroid_hz[active])),
        "flatness": float(np.median(t.flatness[active])),
        "onsets_per_s": float(t.onset.sum() / (len(wave) / SR)),
        "gap_share": float(1 - active.mean()),
        "noise_floor_db": float(np.percentile(t.level_db, 10)),
    }
    spec = np.abs(np.fft.rfft(wave[: len(wave) // 512 * 512].reshape(-1, 512) * np.hanning(512), axis=1)) ** 2
    bands = np.array_split(spec[:, 1:], 64, axis=1)
    env = 10 * np.log10(np.stack([b.mean(axis=1) for b in bands], axis=1).mean(axis=0) + 1e-12)
    return out, env - env.max()


def read_pairs(root: Path) -> list[dict]:
    with open(root / "pairs.csv", newline="") as f:
        return list(csv.DictReader(f))


def collect(root: Path, per_reference: int, sim: SimulatorSettings) -> dict:
    rows = read_pairs(root)
    refs = sorted({r["reference"] for r in rows})
    ref_audio = {r: load_audio(root / r) for r in refs}
    groups: dict[str, list] = {"real, direct (gen 1)": [], "real, second-hand (gen 2)": [], "simulated": []}
    for r in rows:
        wave, sr = load_audio(root / r["imitation"])
        ref_wave, ref_sr = ref_audio[r["reference"]]
        name = "real, direct (gen 1)" if r["generation"] == "1" else "real, second-hand (gen 2)"
        groups[name].append(measure(wave, sr, len(trim_silence(ref_wave, ref_sr)) / ref_sr))
    for k, ref in enumerate(refs):
        ref_wave, ref_sr = ref_audio[ref]
        trimmed = trim_silence(ref_wave, ref_sr)
        for i in range(per_reference):
            wave = simulate_imitation(trimmed, ref_sr, 7919 * k + i, sim)
            groups["simulated"].append(measure(wave, sim.sample_rate, len(trimmed) / ref_sr))
    return groups


def summarise(groups: dict) -> dict:
    return {name: {s: float(np.nanmedian([m[s] for m, _ in items])) for s in STATS}
            for name, items in groups.items() if items}


def plot(groups: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 4, figsize=(15, 9.5))
    colours = {"real, direct (gen 1)": "tab:blue", "real, second-hand (gen 2)": "tab:cyan", "simulated": "tab:orange"}
    for ax, stat in zip(axes.flat, STATS):
        data = [[m[stat] for m, _ in items if np.isfinite(m[stat])] for items in groups.values()]
        parts = ax.violinplot([d if d else [np.nan] for d in data], showmedians=True)
        for body, name in zip(parts["bodies"], groups):
            body.set_facecolor(colours[name])
        ax.set_xticks(range(1, len(groups) + 1), [n.split(" (")[0].replace("real, ", "") for n in groups],
                      fontsize=7)
        ax.set_title(stat.replace("_", " "), fontsize=9)
        if stat in ("duration_ratio", "f0_median_hz", "centroid_hz", "onsets_per_s"):
            ax.set_yscale("log")
    ax = axes.flat[len(STATS)]
    freqs = np.linspace(0, SR / 2, 65)[1:]
    for name, items in groups.items():
        env = np.stack([e for _, e in items])
        ax.plot(freqs, env.mean(axis=0), color=colours[name], label=name)
        ax.fill_between(freqs, *np.percentile(env, [25, 75], axis=0), color=colours[name], alpha=0.15)
    ax.set_title("average spectrum (dB re its peak)", fontsize=9)
    ax.set_xlabel("Hz", fontsize=8)
    ax.legend(fontsize=7)
    axes.flat[-1].axis("off")
    fig.suptitle("Real vocal imitations (../shared/real-imitations-dev) vs simulated imitations of the same "
                 "references", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("real", type=Path, help="a folder with pairs.csv (label, reference, imitation, generation)")
    ap.add_argument("--out", type=Path, default=Path("imitations-real-vs-simulated.png"))
    ap.add_argument("--per-reference", type=int, default=8)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="simulator setting")
    a = ap.parse_args(argv)
    sim = SimulatorSettings()
    for pair in a.set:
        name, value = pair.split("=", 1)
        sim = replace(sim, **{name: type(getattr(sim, name))(value)})
    groups = collect(a.real, a.per_reference, sim)
    plot(groups, a.out)
    summary = summarise(groups)
    a.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{'median':<22}" + "".join(f"{n[:24]:>26}" for n in summary))
    for s in STATS:
        print(f"{s:<22}" + "".join(f"{summary[n][s]:>26.3f}" for n in summary))
    print(f"written: {a.out}, {a.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
