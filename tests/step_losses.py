"""Per-step losses of seeded smoke runs, to show that a refactoring changes no result.

Every `Tensor.backward()` call records the value it differentiates, so a run's losses are captured whatever
the code's structure: pretraining steps, the linear probe, the photonics pretraining and fine-tuning.
`python -m tests.step_losses --write FILE` records them; `tests/test_step_losses.py` compares a run with the
committed file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from essl_core.recipes import get_recipe
from essl_core.results import cpu_name, git_commit
from essl_core.runs import pretrain

GOLDEN = Path(__file__).parent / "golden" / "step_losses.json"
CIFAR_RECIPES = ("cifar10-simclr", "cifar10-esimclr", "cifar10-simsiam", "cifar10-esimsiam")
# Two runs of the transformation study: an I-SSL and an E-SSL one (a group of 24 with 4 random copies).
STUDY_RUNS = (("I-SSL", "hflip"), ("E-SSL", "jigsaw"))


@contextlib.contextmanager
def recorded_backward() -> Iterator[list[float]]:
    """Within the block, every `backward()` of a scalar appends its value to the yielded list."""
    values: list[float] = []
    original = torch.Tensor.backward

    def backward(self, *args, **kwargs):
        if self.numel() == 1:
            values.append(float(self.detach()))
        return original(self, *args, **kwargs)

    torch.Tensor.backward = backward
    try:
        yield values
    finally:
        torch.Tensor.backward = original


def machine_key() -> str:
    """The CPU model and the instruction set torch's kernels use: what decides the last bits of a float sum."""
    return f"{cpu_name()}, {torch.backends.cpu.get_cpu_capability()}"


def cifar_run(name: str, data_root: Path, overrides: dict | None = None) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        recipe = get_recipe(name, "smoke", overrides)
        pretrain(recipe, tmp / "run", data_root=data_root, device="cpu", progress=False)

    return run


def study_run(variant: str, transformation: str, data_root: Path) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        from essl_core.study import study_recipe

        recipe = study_recipe(variant, transformation, "smoke", 42)
        pretrain(recipe, tmp / "run", data_root=data_root, device="cpu", progress=False)

    return run


def photonics_run(tmp: Path) -> None:
    from essl_core.photonics.config import get_photonics_recipe
    from essl_core.photonics.experiment import run_photonics

    run_photonics(
        get_photonics_recipe("smoke"),
        ("blob", "gpm"),
        ("none", "simclr", "simclr_trans", "simclr_ee"),
        device="cpu",
        data_dir=tmp,
        workers=1,
        runs_root=tmp,
    )


def runs(data_root: Path) -> dict[str, Callable[[Path], None]]:
    """Every run the golden file holds, by name."""
    out = {name: cifar_run(name, data_root) for name in CIFAR_RECIPES}
    out.update({f"study-{v}-{t}": study_run(v, t, data_root) for v, t in STUDY_RUNS})
    out["photonics-smoke"] = photonics_run
    return out


def capture(run: Callable[[Path], None]) -> list[float]:
    """The losses of every backward pass of `run`, in a fresh temporary directory."""
    with tempfile.TemporaryDirectory() as tmp, recorded_backward() as values:
        run(Path(tmp))
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="holds cifar10/cifar10.npz")
    parser.add_argument("--write", type=Path, default=GOLDEN)
    parser.add_argument("--only", nargs="+", help="run names (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    todo = runs(args.data_root)
    golden = json.loads(args.write.read_text()) if args.write.exists() else {"runs": {}}
    for name in args.only or todo:
        golden["runs"][name] = capture(todo[name])
        print(f"{name}: {len(golden['runs'][name])} losses")
    golden["note"] = "per-backward loss values of seeded smoke runs on the CPU, one torch thread"
    golden["provenance"] = {"git": git_commit(), "torch": torch.__version__}
    golden["cpu"] = machine_key()
    args.write.parent.mkdir(parents=True, exist_ok=True)
    args.write.write_text(json.dumps(golden, indent=1) + "\n")


if __name__ == "__main__":
    main()
