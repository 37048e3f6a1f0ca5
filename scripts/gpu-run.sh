#!/usr/bin/env bash
# The GPU track, the whole job of one device call (../shared/GPU.md): throughput check, then
# bert-tiny, eelbert-tiny and uno-eelbert pretrained and fine-tuned alike, each written to OUT as it
# finishes. Runs from the repository without installing it; uses what `scripts/gpu_track.py
# prepare .gpu --wheels` put in .gpu/ (packed data, tokenizer, task files, pydantic wheels) when
# that folder is there. EELBERT_GPU_SMOKE=1 runs the very same steps at CPU size (the tests do).
#
#   scripts/gpu-run.sh "$OUT" [--seconds 530]
set -euo pipefail
out=${1:?usage: scripts/gpu-run.sh OUT_DIR [--seconds N]}
shift
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
if [ -d "$repo/.gpu/whl" ] && ! "$python" -c "import pydantic" 2>/dev/null; then
  site=$(mktemp -d)
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$repo"/.gpu/whl/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ -d "$repo/.gpu/cache" ]; then
  export EELBERT_CACHE="$repo/.gpu/cache"
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ "${EELBERT_GPU_SMOKE:-0}" != 1 ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
exec "$python" "$repo/scripts/gpu_track.py" run "$out" "$@"
