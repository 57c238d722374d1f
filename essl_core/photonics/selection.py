"""Which cells train, select and test, and which fine-tuning epoch counts: a fixed split of the labelled file,
and three readings of a fine-tuning curve (ours on validation, the paper's on test, the last epoch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import EsslError
from .config import PhotonicsRecipe
from .dataset import PhcData

PROTOCOLS = ("validation", "official", "last")


@dataclass
class Splits:
    train_pool: PhcData
    val: PhcData
    test: PhcData


def split_labelled(data: PhcData, recipe: PhotonicsRecipe) -> Splits:
    """A fixed permutation: test, then validation, then the training pool; label subsets are its prefixes."""
    r = recipe
    if len(data) < r.labelled:
        raise EsslError(f"the labelled file has {len(data)} cells; the {r.tier} tier needs {r.labelled}")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(r.split_seed))
    a, b = r.test, r.test + r.val
    return Splits(data.subset(order[b : r.labelled]), data.subset(order[a:b]), data.subset(order[:a]))


def select(curves: dict[str, dict]) -> dict:
    """Three readings of one fine-tuning seed's curves (one per encoder checkpoint):

    validation: the test error where the validation error is lowest (over checkpoints and evaluations);
    official: the lowest test error over checkpoints and the evaluations at the start of each epoch (paper);
    last: the test error after the last epoch from the last checkpoint.
    """
    official = min(t for c in curves.values() for t in c["test"][:-1])
    last = curves[max(curves, key=int)]["test"][-1]
    return {"validation": validation_choice(curves)[1], "official": official, "last": last}


def validation_choice(curves: dict[str, dict], fraction: float = 1.0) -> tuple[float, float]:
    """(validation, test) error where the validation error is lowest, over checkpoints and the evaluations in
    the first `fraction` of fine-tuning (curves without epochs were evaluated every epoch)."""
    points = []
    for c in curves.values():
        epochs = c.get("epoch", range(len(c["val"])))
        points += [(v, t) for e, v, t in zip(epochs, c["val"], c["test"], strict=True) if e <= fraction * epochs[-1]]
    return min(points)


def summary(results: dict) -> dict:
    """Per label count and protocol: mean, sample std over fine-tuning seeds (0 for one), n and the per-seed
    values of the test error."""
    out = {}
    for count, by_seed in results.items():
        out[count] = {}
        for protocol in PROTOCOLS:
            values = np.array([r["selected"][protocol] for r in by_seed.values()])
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            out[count][protocol] = {
                "mean": float(values.mean()),
                "std": std,
                "n": len(values),
                "values": values.tolist(),
            }
    return out
