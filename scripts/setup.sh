#!/usr/bin/env bash
# Set up qvi on this machine: system libraries, a virtualenv in .venv, pinned Python packages.
# Idempotent: a second run only checks. Usage: bash scripts/setup.sh [--test] [--cluster]
#   --test     also install what the test suite needs (pytest, Ray; Xvfb, xdotool, PulseAudio, xprop)
#   --cluster  also install Ray, for qvi index --engine ray on a farm (docs/SCALING.md)
# ONNX Runtime (the [fast] extra: about 1.4x faster indexing) is always installed.
set -euo pipefail
cd "$(dirname "$0")/.."
TEST=""; CLUSTER=""
for arg in "$@"; do
  case "$arg" in
    --test) TEST=1 ;;
    --cluster) CLUSTER=1 ;;
    *) echo "qvi setup: unknown option $arg (use --test, --cluster)" >&2; exit 2 ;;
  esac
done

PY=${PYTHON:-python3}
SYSTEM_PKGS=(libportaudio2 libsndfile1)
"$PY" -c "import tkinter" 2>/dev/null || SYSTEM_PKGS+=(python3-tk)
[[ -n $TEST ]] && SYSTEM_PKGS+=(xvfb xdotool pulseaudio x11-utils)

missing=()
if command -v dpkg >/dev/null; then
  for p in "${SYSTEM_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
fi
if ((${#missing[@]})); then
  echo "qvi setup: installing system packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ ! -x .venv/bin/python ]]; then
  echo "qvi setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.qvi-installed
extras="fast"; [[ -n $TEST ]] && extras+=",test"; [[ -n $CLUSTER ]] && extras+=",cluster"
want="$(sha256sum setup.cfg | cut -c1-16)-$extras"
if [[ ! -f $stamp || "$(cat $stamp)" != "$want" ]]; then
  echo "qvi setup: installing Python packages (torch is large: a few minutes the first time)"
  .venv/bin/pip install -q --disable-pip-version-check -e ".[$extras]"
  # The bundled CNN was converted from this wheel; tests check the conversion. Its declared
  # pins are obsolete, so it is installed without dependencies and never imported by qvi.
  .venv/bin/pip install -q --disable-pip-version-check --no-deps aisfx==0.1.2
  .venv/bin/python -c "import torch, torchaudio, sounddevice, soundfile, tkinter" 2>&1 | tail -1
  echo "$want" > $stamp
fi
echo "qvi setup: ready (.venv/bin/qvi, python main.py)"
