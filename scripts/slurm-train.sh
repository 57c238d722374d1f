#!/usr/bin/env bash
# Multi-node pretraining under SLURM: one torchrun per node, one process per GPU, PyTorch's c10d rendezvous on
# the first node. Every argument goes to `python -m essl_core train`, e.g. the paper's 32 GPUs:
#
#   sbatch --nodes 4 --gpus-per-node 8 scripts/slurm-train.sh --recipe imagenet-esimclr --tier full
#
# The run directory (default runs/RECIPE-TIER-sSEED) must be on a filesystem every node sees; resubmitting
# the same command resumes from its last checkpoint.
#SBATCH --job-name=essl-train
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=32
#SBATCH --time=72:00:00
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
: "${SLURM_JOB_NODELIST:?run this script with sbatch (or set the SLURM variables)}"
head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
gpus=${SLURM_GPUS_ON_NODE:-$(nvidia-smi -L | wc -l)}
port=${ESSL_RDZV_PORT:-29500}
exec srun torchrun --nnodes "$SLURM_NNODES" --nproc_per_node "$gpus" --rdzv_id "$SLURM_JOB_ID" \
    --rdzv_backend c10d --rdzv_endpoint "$head_node:$port" -m essl_core train "$@"
