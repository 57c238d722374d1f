#!/usr/bin/env bash
# The one command for a lent GPU machine (run from the repository root, with .gpu/ carried; `make gpu-carry`):
#   bash scripts/gpu-run.sh                          (or `make gpu-run`): CIFAR-10, the first command
#   bash scripts/gpu-run.sh --experiment imagenet    the second: the ImageNet benchmark and Imagenette replica
# It uses the machine's own python3 (torch, torchvision, numpy, pillow, tqdm are there), installs the carried
# kornia wheels for the augmentation comparison if present (`make gpu-carry KORNIA=1`), prepares CIFAR-10 from
# .gpu/, runs the full-tier runner, and, if that fails early (in its first 120 s), the smoke tier on CUDA as a fallback. Everything it
# prints also goes to $OUT/gpu-run.log; every record goes to $OUT (else book/results/).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-book/results}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu-run.log") 2>&1
start=$SECONDS
if compgen -G ".gpu/whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/essl-site .gpu/whl/*.whl \
    && export PYTHONPATH="/tmp/essl-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 ESSL_DATA="${ESSL_DATA:-/tmp/essl-data}"
# The CIFAR-10 cache, from the copy `make gpu-carry` put in .gpu/ (the runner itself knows no data path).
if [ ! -f "$ESSL_DATA/cifar10/cifar10.npz" ]; then
  python3 -m data_scripts.cifar10 --source .gpu/cifar10-jpeg.tar.gz --root "$ESSL_DATA" || exit 2
fi
# The Imagenette cache (JPEG-encoded, decoded when loaded), as `make gpu-carry` made it.
if compgen -G ".gpu/data/imagenet/*.npz" >/dev/null; then
  mkdir -p "$ESSL_DATA/imagenet" && cp -n .gpu/data/imagenet/*.npz "$ESSL_DATA/imagenet/"
fi
python3 -m essl_core.gpu_run --tier full --out "$OUT" "$@"
status=$?
if [ "$status" -ne 0 ] && [ $((SECONDS - start)) -lt 120 ]; then
  echo "gpu-run.sh: the full tier failed early (status $status); running the smoke tier on CUDA instead"
  python3 -m essl_core.gpu_run --tier smoke --device cuda --out "$OUT/smoke" --deadline-s 120 "$@"
  status=$?
fi
exit "$status"
