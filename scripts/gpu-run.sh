#!/usr/bin/env bash
# The GPU track, the whole job of one device call (../shared/GPU.md; scripts/gpu_track.py says what it
# runs): a ~10 s throughput check, then bert-tiny, eelbert-tiny and uno-eelbert pretrained alike with
# encoder snapshots, each archived to OUT as it finishes, then the CUDA proof. Runs from a plain copy
# of the repository without installing it; uses what `python scripts/gpu_track.py prepare .gpu
# --wheels` put in .gpu/ (the packed corpus, xz-compressed, and pydantic wheels) when it is there.
# EELBERT_GPU_CARRY names another carry folder. EELBERT_GPU_SMOKE=1 runs the very same steps at CPU size (the tests do).
#
#   scripts/gpu-run.sh "$OUT" [--seconds 570] [--no-proof] [--models SPEC...] [--tokens N] [--set key=value]
#   scripts/gpu-run.sh --proof "$OUT" [--parts ...] [--set pretrain.deterministic=true]   (only the CUDA proof)
#   scripts/gpu-run.sh --check "$OUT" [--set pretrain.compile=true]                       (only the throughput check)
set -euo pipefail
command=run
case "${1:-}" in --proof|--check) command=${1#--}; shift ;; esac
out=${1:?usage: scripts/gpu-run.sh [--proof|--check] OUT_DIR [options of scripts/gpu_track.py]}
shift
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
carry=${EELBERT_GPU_CARRY:-$repo/.gpu}  # what `gpu_track.py prepare` built (the tests point it elsewhere)
if [ -d "$carry/whl" ] && ! "$python" -c "import pydantic" 2>/dev/null; then
  site=$(mktemp -d)
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$carry"/whl/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$repo:$repo/runtime${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ -d "$carry/cache" ]; then
  cache=$(mktemp -d)/eelbert-cache
  "$python" "$repo/scripts/gpu_track.py" unpack "$carry" "$cache"
  export EELBERT_CACHE="$cache"
fi
if [ "${EELBERT_GPU_SMOKE:-0}" != 1 ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
exec "$python" "$repo/scripts/gpu_track.py" "$command" "$out" "$@"
