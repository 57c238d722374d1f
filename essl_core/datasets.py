"""Which images a recipe trains and evaluates on: its dataset's cache, at the recipe's subsets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from .data import CIFAR10_CLASSES, ImageData, data_root, load_cifar10
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
        data = load_image_folder(Path(recipe.image_folder) if recipe.image_folder else image_folder(recipe, root))
    else:
        data = load_imagenet(recipe.dataset, recipe.cache_side, root)
    return data.subset(recipe.train_subset, recipe.test_subset, seed=0)


def image_folder(recipe, root: str | os.PathLike | None = None) -> Path:
    """Where the original images of an ImageNet recipe's dataset are by default: <data root>/imagenet/<dataset>."""
    return data_root(root) / "imagenet" / recipe.dataset


def load_image_folder(folder: Path) -> ImageData:
    """The original images of an ImageFolder tree (`train/<wnid>/*`, `val/<wnid>/*`) as file paths, with
    torchvision's ImageFolder rules (classes in sorted order); they are decoded when a view is made."""
    if not ((folder / "train").is_dir() and (folder / "val").is_dir()):
        raise EsslError(
            f"no ImageNet images at {folder} (expected train/<wnid>/ and val/<wnid>/ folders, as torchvision's "
            "ImageNet dataset unpacks them); pass the folder with --set image_folder=PATH"
        )
    classes, index = find_classes(str(folder / "train"))
    splits = []
    for split in ("train", "val"):
        try:
            items = make_dataset(str(folder / split), index, extensions=IMG_EXTENSIONS)
        except (FileNotFoundError, OSError) as exc:
            raise EsslError(f"{folder / split}: {exc}") from None
        splits += [np.array([p for p, _ in items]), np.array([c for _, c in items], dtype=np.int64)]
    known = next((k for k in KNOWN_SETS.values() if len(classes) == k.n_classes), None)
    name = known.name if known else f"ImageNet {len(classes)}-class subset"
    meta = {
        "name": f"{name} (original images, {folder})",
        "format": "imagefolder (original files)",
        "source": str(folder.resolve()),
        "counts": {"train": len(splits[1]), "test": len(splits[3])},
        "classes": classes,
    }
    return ImageData(*splits, meta=meta)
