#!/usr/bin/env bash
# The cpu-tier runs behind the book's verdicts, one after another, each on one torch thread and niced so that the
# machine stays usable; every run resumes from its checkpoint in runs/ and a finished one is skipped. Run it
# from a clean clone (the records name its commit), after `make setup data`:
#   bash scripts/evidence-runs.sh                 # every run below that has no record in book/results yet
#   bash scripts/evidence-runs.sh imagenet        # only the runs whose recipe contains "imagenet"
# Each finished record is written to book/results/ at once: commit it.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=(
  "cifar10-simclr 42" "cifar10-esimclr 42" "cifar10-simclr 43" "cifar10-esimclr 43"
  "cifar10-simclr 44" "cifar10-esimclr 44"
  "imagenet-simclr 42" "imagenet-esimclr 42" "imagenet-simclr 43" "imagenet-esimclr 43"
)
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
for run in "${RUNS[@]}"; do
  read -r recipe seed <<< "$run"
  [[ "$recipe" == *"${1:-}"* ]] || continue
  [ -f "book/results/$recipe-cpu-s$seed.json" ] && continue
  echo "$(date -u +%FT%T) $recipe seed $seed"
  nice -n 10 .venv/bin/python -m essl_core train --recipe "$recipe" --tier cpu --set "seed=$seed" \
    --record-dir book/results --quiet || exit $?
done
