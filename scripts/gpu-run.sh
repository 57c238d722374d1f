#!/usr/bin/env bash
# The one command for a lent GPU machine (run from the repository root, with .gpu/ carried):
#   bash scripts/gpu-run.sh          (or `make gpu-run`)
# It uses the machine's own python3 (torch, torchvision, numpy, pillow, tqdm are there), installs the
# carried kornia wheels for the augmentation comparison if present, and writes every record to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".gpu/whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/essl-site .gpu/whl/*.whl \
    && export PYTHONPATH="/tmp/essl-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 ESSL_DATA="${ESSL_DATA:-/tmp/essl-data}"
exec python3 -m essl_core.gpu_run --tier full "$@"
