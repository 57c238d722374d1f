"""Where things are written: the names of run directories, of the files in them, and of result records, and
reading a tier's records back. The one place these names are spelled."""

from __future__ import annotations

from pathlib import Path

from .results import read_record

RUNS = Path("runs")  # the default root of run directories (relative to where a command runs)
CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"
RESULT = "result.json"  # a finished run's record, inside its directory
EVAL = "eval.json"  # `eval`'s record, beside the checkpoint it evaluated


def record_file(*parts: object) -> str:
    """A record's file name: its parts joined by dashes."""
    return "-".join(str(p) for p in parts) + ".json"


def pretrain_run_dir(root: str | Path, recipe_name: str, tier: str, seed: int) -> Path:
    """A CIFAR-10 pretraining run: RECIPE-TIER-sSEED."""
    return Path(root) / f"{recipe_name}-{tier}-s{seed}"


def pretrain_record(recipe_name: str, tier: str, seed: int) -> str:
    return record_file(recipe_name, tier, f"s{seed}")


def study_run_name(variant: str, transformation: str | None, seed: int) -> str:
    """One run of the transformation study: VARIANT[-TRANSFORMATION]-sSEED."""
    return f"{variant}-{transformation}-s{seed}" if transformation else f"{variant}-s{seed}"


def study_run_dir(root: str | Path, tier: str, run_name: str) -> Path:
    return Path(root) / f"study-{tier}" / run_name


def study_record(tier: str, run_name: str) -> str:
    return record_file("study", tier, run_name)


def lab_run_dir(root: str | Path, tier: str, invariance: str | None, equivariance: str | None, lmbd: float) -> Path:
    """A transformation-lab run: lab-TIER/lab-inv-G-e-G[-lLAMBDA]."""
    name = f"lab-inv-{invariance or 'none'}-e-{equivariance or 'none'}"
    return Path(root) / f"lab-{tier}" / (f"{name}-l{lmbd:g}" if equivariance else name)


def _pretrain_suffix(pretrain_seed: int) -> tuple[str, ...]:
    # Pretraining seed 1 (the recipe's default, the paper's single pretraining) keeps the names it always had.
    return () if pretrain_seed == 1 else (f"p{pretrain_seed}",)


def photonics_run_dir(root: str | Path, tier: str, family: str, mode: str, pretrain_seed: int = 1) -> Path:
    return Path(root) / f"photonics-{tier}" / "-".join((family, mode, *_pretrain_suffix(pretrain_seed)))


PRETRAIN_CHECKPOINT = "pretrain.pt"  # a photonics run's pretraining


def finetune_file(count: int, seed: int) -> str:
    """A photonics run's result for one label count and fine-tuning seed."""
    return f"finetune-n{count}-s{seed}.json"


def photonics_record(tier: str, family: str, mode: str, pretrain_seed: int = 1) -> str:
    return record_file("photonics", tier, family, mode, *_pretrain_suffix(pretrain_seed))


def bench_record(recipe_name: str, tier: str, device_type: str) -> str:
    return record_file("bench", recipe_name, tier, device_type)


def tier_records(directory: str | Path, experiment: str, tier: str) -> list[dict]:
    """The records of one experiment ("study", "photonics") at one tier in `directory`, in name order."""
    return [read_record(p) for p in sorted(Path(directory).glob(record_file(experiment, tier, "*")))]
