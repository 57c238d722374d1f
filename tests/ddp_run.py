"""What the DDP tests run, under `torchrun --nproc_per_node 2` or in one process:

    python -m tests.ddp_run step RECIPE OUT       # two training steps on one fixed batch of 16 (split over ranks)
    python -m tests.ddp_run train DATA RUN_DIR    # a small imagenet-esimclr smoke run (resumes if it can)
    python -m tests.ddp_run interrupt DATA RUN_DIR   # the same, stopped by Ctrl-C on every rank in epoch 2

`step` saves (rank 0) the mean loss of each step and the updated weights; the test compares them with one
process on the whole batch. `train` and `interrupt` let the test compare an uninterrupted run with one that was
interrupted and resumed by a new torchrun.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
import torch

from essl_core.data import ImageData
from essl_core.distributed import init_distributed, mean_over_ranks
from essl_core.errors import EsslError, run_command
from essl_core.recipes import get_recipe
from essl_core.runs import pretrain
from essl_core.train import Trainer

BATCH = 16
# Small heads, so that the step is quick; the networks' structure is the recipe's.
SMALL = {"batch_size": BATCH, "proj_hidden": 64, "proj_dim": 64, "rot_hidden": 64, "rot_bottleneck": 32}


def step(recipe_name: str, out: Path) -> None:
    dev = torch.device("cpu")
    world = init_distributed(dev)
    recipe = get_recipe(recipe_name, "smoke", SMALL)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2 * BATCH, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=2 * BATCH)
    data = ImageData(images, labels, images[:8], labels[:8], {"name": "random images"})
    trainer = Trainer(recipe, out.parent, dev, data, progress=False)
    trainer.step = trainer.warmup_steps  # the base learning rate
    g = torch.Generator().manual_seed(1)
    batch = [
        torch.randn(BATCH, 3, 32, 32, generator=g),
        torch.randn(BATCH, 3, 32, 32, generator=g),
        torch.randn(BATCH, 3, 16, 16, generator=g),
        torch.randint(10, (BATCH,), generator=g),
    ]
    share = BATCH // world.size
    mine = [t[world.rank * share : (world.rank + 1) * share] for t in batch]
    views = mine if trainer.views.labelled else mine[:3]
    losses = [float(mean_over_ranks(trainer._train_step(list(views))["loss"])) for _ in range(2)]
    if world.main:
        torch.save({"losses": losses, "model": trainer.model.state_dict()}, out)


def interrupt(original, at: int):
    """A Trainer._train_step that is Ctrl-C on every rank at step `at`."""

    def train_step(trainer: Trainer, views):
        if trainer.step == at:
            raise KeyboardInterrupt
        return original(trainer, views)

    return train_step


RECIPE = get_recipe("imagenet-esimclr", "smoke", {"epochs": 3, "train_subset": 128, "test_subset": 64})


def train(data_root: str, run_dir: Path) -> None:
    pretrain(RECIPE, run_dir, data_root=data_root, progress=False)


def interrupted(data_root: str, run_dir: Path) -> None:
    original = Trainer._train_step
    Trainer._train_step = interrupt(original, at=5)  # 4 steps per epoch: inside epoch 2
    try:
        pretrain(RECIPE, run_dir, data_root=data_root, progress=False)
    except EsslError as exc:
        assert "interrupted at epoch 2" in str(exc), exc
    else:
        raise AssertionError("the run was not interrupted")


def dies(data_root: str, run_dir: Path) -> None:
    """Rank 1 dies at step 3; rank 0 must stop with one line, not hang."""
    original = Trainer._train_step

    def train_step(trainer: Trainer, views):
        if trainer.step == 3 and trainer.world.rank == 1:
            os._exit(1)
        return original(trainer, views)

    Trainer._train_step = train_step
    sys.exit(run_command(lambda: pretrain(RECIPE, run_dir, data_root=data_root, progress=False)))


def disagree(data_root: str, run_dir: Path) -> None:
    """Rank 1 is started with another seed."""
    recipe = dataclasses.replace(RECIPE, seed=RECIPE.seed + int(os.environ.get("RANK", "0")))
    sys.exit(run_command(lambda: pretrain(recipe, run_dir, data_root=data_root, progress=False)))


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, arg, target = sys.argv[1:4]
    modes = {"step": step, "train": train, "interrupt": interrupted, "dies": dies, "disagree": disagree}
    modes[mode](arg, Path(target))
