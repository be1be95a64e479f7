#!/usr/bin/env bash
# Several seeds of one training recipe side by side, each stopped after SECONDS, then packed by
# scripts/pack_runs.py for a machine whose return is small (docs/TRAINING.md rows 48, 49, 54:
# 12 runs at once on a lent 16-core GPU machine, 230 s each, reach epoch 20-26 of 30).
#
#   scripts/parallel_runs.sh DATA OUT SECONDS "SEEDS" [qvi train options ...]
#   e.g. scripts/parallel_runs.sh ../shared/train-sfx /tmp/ab 230 "$(seq 20 31)" --device cuda
#
# Every run shares its starting head (head_seed=0), so the runs can be compared seed by seed
# with another arm and averaged into a soup; each uses one thread. Writes OUT/runs/sS.pt,
# OUT/logs/sS.log and OUT/packs/runs*.pack. PYTHON picks the interpreter (default python3).
set -u
if [ $# -lt 4 ]; then
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
data=$(realpath -m "$1") out=$(realpath -m "$2") seconds=$3 seeds=$4
shift 4
py=${PYTHON:-python3}
cd "$(dirname "$0")/.." || exit 2
mkdir -p "$out/runs" "$out/logs"
for s in $seeds; do
    timeout "$seconds" "$py" -m qvi_app.cli train "$data" --out "$out/runs/s$s.pt" --epochs 30 --seed "$s" \
        --set head_seed=0 --set threads=1 --quiet "$@" > "$out/logs/s$s.log" 2>&1 &
done
wait
shopt -s nullglob
runs=("$out"/runs/s*.pt)
if [ ${#runs[@]} -eq 0 ]; then
    echo "no run wrote a checkpoint (see $out/logs)" >&2
    exit 1
fi
exec "$py" scripts/pack_runs.py pack "$out/packs" "${runs[@]}"
