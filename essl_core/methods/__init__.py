"""The SSL methods, by name. Adding one is a file with a `Method` subclass and a line here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .barlowtwins import BarlowTwins
from .base import Method
from .equivariance import EquivarianceBranch
from .simclr import SimCLR
from .simsiam import SimSiam

if TYPE_CHECKING:
    from ..recipes import Recipe

METHODS: dict[str, type[Method]] = {m.name: m for m in (SimCLR, SimSiam, BarlowTwins)}

__all__ = ["METHODS", "BarlowTwins", "EquivarianceBranch", "Method", "SimCLR", "SimSiam", "build_model"]


def build_model(recipe: Recipe) -> Method:
    """The network of a (validated) recipe: its method's heads on the backbone, plus the E-branch."""
    return METHODS[recipe.method](recipe)
