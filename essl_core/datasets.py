"""Which images a recipe trains and evaluates on: its dataset's cache, at the recipe's subsets."""

from __future__ import annotations

import os

from .data import CIFAR10_CLASSES, ImageData, load_cifar10
from .errors import EsslError
from .imagenet_data import KNOWN_SETS, load_imagenet


def n_classes(dataset: str) -> int:
    """How many classes `dataset` has (the size of the online classifier)."""
    return len(CIFAR10_CLASSES) if dataset == "cifar10" else KNOWN_SETS[dataset].n_classes


def recipe_data(recipe, root: str | os.PathLike | None = None) -> ImageData:
    """The recipe's training and evaluation images: class-balanced subsets of its dataset's cache."""
    if recipe.dataset == "cifar10":
        data = load_cifar10(root)
    elif recipe.cache_side == 0:
        raise EsslError(
            f"{recipe.name} with cache_side=0 reads the original ImageNet JPEGs, which essl_core cannot do yet; "
            "use --tier cpu or smoke, or --set cache_side=64 (a prepared cache)"
        )
    else:
        data = load_imagenet(recipe.dataset, recipe.cache_side, root)
    return data.subset(recipe.train_subset, recipe.test_subset, seed=0)
