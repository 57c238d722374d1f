#!/usr/bin/env bash
# The one command for a lent GPU machine (run from the repository root, with .gpu/ carried):
#   bash scripts/gpu-run.sh          (or `make gpu-run`)
# It uses the machine's own python3 (torch, torchvision, numpy, pillow, tqdm are there), installs the
# carried kornia wheels for the augmentation comparison if present, prepares CIFAR-10 from .gpu/, and writes
# every record to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".gpu/whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/essl-site .gpu/whl/*.whl \
    && export PYTHONPATH="/tmp/essl-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 ESSL_DATA="${ESSL_DATA:-/tmp/essl-data}"
# The CIFAR-10 cache, from the copy `make gpu-carry` put in .gpu/ (the runner itself knows no data path).
if [ ! -f "$ESSL_DATA/cifar10/cifar10.npz" ]; then
  python3 -m data_scripts.cifar10 --source .gpu/cifar10-jpeg.tar.gz --root "$ESSL_DATA"
fi
exec python3 -m essl_core.gpu_run --tier full "$@"
