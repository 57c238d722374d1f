"""The ImageNet recipes: networks against the official shapes counted independently, the optimizer's groups, the
asymmetric views' probabilities, and a smoke run on the real Imagenette copy through the command line."""

import statistics

import pytest
import torch
from torch import nn
from torchvision import transforms as T

from essl_core.augment import RandomBlur
from essl_core.datasets import recipe_data
from essl_core.imagenet_views import imagenet_transforms
from essl_core.lars import LARS
from essl_core.methods import build_model
from essl_core.recipes import get_recipe
from essl_core.results import read_record
from essl_core.train import Trainer

from .test_cli import run


def _linear(i, o, bias=True):
    return i * o + (o if bias else 0)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_full_esimclr_has_the_official_networks():
    model = build_model(get_recipe("imagenet-esimclr", "full"))
    assert _count(model.backbone) == 23_508_032  # torchvision ResNet-50 without its fc
    assert all(float(b.bn3.weight.detach().abs().sum()) == 0 for b in model.backbone.modules() if hasattr(b, "bn3"))
    # Projector 2048-2048-2048-128: two Linear(no bias)+BN, a Linear(no bias) and an affine BN(128).
    assert _count(model.projector) == 2 * (_linear(2048, 2048, False) + 2 * 2048) + _linear(2048, 128, False) + 256
    # Rotation head: Linear+LN+ReLU twice, Linear(2048 -> 128), LN(128), Linear(128 -> 4).
    head = model.equivariance.head
    expected = 2 * (_linear(2048, 2048) + 2 * 2048) + _linear(2048, 128) + 2 * 128 + _linear(128, 4)
    assert _count(head) == expected
    kinds = [type(m).__name__ for m in head]
    assert kinds == ["Linear", "LayerNorm", "ReLU", "Linear", "LayerNorm", "ReLU", "Linear", "LayerNorm", "Linear"]
    assert _count(model.online_head) == _linear(2048, 1000)  # ImageNet-1k's classes at the full tier


def test_full_simsiam_freezes_the_projector_bias_and_keeps_the_predictor_lr():
    r = get_recipe("imagenet-esimsiam", "full")
    model = build_model(r)
    last, bn = model.projector[-2], model.projector[-1]
    assert last.bias is not None and not last.bias.requires_grad and not bn.affine
    assert model.online_head is None and model.equivariance.head[-1].in_features == 256
    groups = model.param_groups()
    in_groups = {id(p) for g in groups for p in g["params"]}
    assert id(last.bias) not in in_groups
    assert [g["scheduled"] for g in groups] == [True, False]
    assert (r.effective_lr, r.weight_decay, r.lr_per_epoch, r.warmup_epochs, r.lmbd) == (0.1, 1e-4, True, 0, 0.08)


def test_full_barlow_twins_gives_norms_and_biases_their_own_lr():
    r = get_recipe("imagenet-ebarlowtwins", "smoke")
    trainer_groups = build_model(r).param_groups()
    assert [g["lr_scale"] for g in trainer_groups] == [1.0, 0.024]
    assert all(p.ndim > 1 for p in trainer_groups[0]["params"]) and all(
        p.ndim == 1 for p in trainer_groups[1]["params"]
    )
    full = get_recipe("imagenet-ebarlowtwins", "full")
    # The official lrs at batch 4096: 0.2 x 16 = 3.2 for weights, 0.0048 x 16 = 0.0768 for 1-D parameters.
    assert full.effective_lr == pytest.approx(3.2) and full.effective_lr * full.norm_lr_ratio == pytest.approx(0.0768)
    assert (full.lmbd, full.proj_dim, full.optimizer) == (8.0, 8192, "lars")


def test_views_are_asymmetric_and_the_rotation_view_is_a_small_crop():
    def parts(compose, kind):
        return [t for t in compose.transforms if isinstance(t, kind)]

    v1, v2, v3 = imagenet_transforms(224, (0.08, 1.0), 96, (0.05, 0.14))
    assert [parts(v, RandomBlur)[0].p for v in (v1, v2, v3)] == [1.0, 0.1, 0.1]
    assert [parts(v, T.RandomSolarize)[0].p for v in (v1, v2, v3)] == [0.0, 0.2, 0.0]
    crops = [parts(v, T.RandomResizedCrop)[0] for v in (v1, v2, v3)]
    assert [(c.size, c.scale) for c in crops] == [((224, 224), (0.08, 1.0))] * 2 + [((96, 96), (0.05, 0.14))]
    assert [c.interpolation for c in crops] == [T.InterpolationMode.BICUBIC] * 2 + [T.InterpolationMode.BILINEAR]
    assert parts(v1, RandomBlur)[0].sigma == (0.1, 2.0)
    small = imagenet_transforms(64, (0.08, 1.0), 28, (0.05, 0.14))
    assert parts(small[2], RandomBlur)[0].sigma == pytest.approx((0.1 * 64 / 224, 2.0 * 64 / 224))


def test_blur_probability_and_sigma_match_their_distributions():
    from PIL import Image, ImageFilter

    sigmas = []
    original = ImageFilter.GaussianBlur

    class Spy(original):
        def __init__(self, radius):
            sigmas.append(radius)
            super().__init__(radius)

    ImageFilter.GaussianBlur = Spy
    try:
        torch.manual_seed(0)
        img = Image.new("RGB", (8, 8))
        n = 4000
        for _ in range(n):
            RandomBlur(0.1)(img)
    finally:
        ImageFilter.GaussianBlur = original
    # Binomial(4000, 0.1): mean 400, sd 19; sigma ~ U(0.1, 2.0): mean 1.05, sd of the mean 0.55 / sqrt(400).
    assert abs(len(sigmas) - 400) < 4 * 19
    assert abs(statistics.mean(sigmas) - 1.05) < 4 * 0.55 / 20 and min(sigmas) >= 0.1 and max(sigmas) <= 2.0


def test_smoke_trainer_uses_lars_and_the_imagenet_schedule(imagenette_root, tmp_path):
    r = get_recipe("imagenet-esimclr", "smoke")
    assert (r.dataset, r.optimizer, r.final_lr_ratio, r.temperature, r.rot_crop_scale) == (
        "imagenette",
        "lars",
        0.001,
        0.2,
        (0.05, 0.14),
    )
    assert get_recipe("imagenet-esimclr", "cpu").rot_size / 64 == pytest.approx(96 / 224, abs=0.01)
    trainer = Trainer(r, tmp_path, torch.device("cpu"), recipe_data(r, imagenette_root), progress=False)
    assert isinstance(trainer.optimizer, LARS)
    trainer.step = trainer.total_steps  # the cosine ends at 0.001 x the base lr, not at 0
    assert trainer.learning_rate() == pytest.approx(0.001 * r.effective_lr)
    views = next(trainer.views.epoch(0))
    assert [tuple(v.shape) for v in views] == [(32, 3, 32, 32), (32, 3, 32, 32), (32, 3, 16, 16), (32,)]


def test_imagenet_esimclr_smoke_run_from_the_command_line(imagenette_root, tmp_path):
    proc = run("train", "--recipe", "imagenet-esimclr", "--tier", "smoke", "--data-root", imagenette_root,
               "--run-dir", tmp_path / "run", "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = read_record(tmp_path / "run" / "result.json")
    assert record["dataset"]["name"] == "Imagenette (224x224 squashed, JPEG q75 copy; cached at 64px)"
    loss, ssl, rot, online = (record["curves"][k] for k in ("loss", "ssl", "rot", "online"))
    # The total is ssl + 0.4 rot + the online classifier's cross-entropy (10 Imagenette classes: ln 10 at first).
    assert all(abs(t - (s + 0.4 * q + o)) < 1e-3 * t for t, s, q, o in zip(loss, ssl, rot, online, strict=True))
    assert abs(online[0] - 2.30) < 0.3 and record["config"]["optimizer"] == "lars"
    assert 0 <= record["metrics"]["knn_top1"] <= 100


def test_the_full_tier_reads_original_image_files(tmp_path):
    import numpy as np
    from PIL import Image

    from essl_core.errors import EsslError
    from essl_core.runs import pretrain

    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("val", 5)):
        for wnid in ("n00000001", "n00000002"):
            (tmp_path / "in" / split / wnid).mkdir(parents=True)
            for i in range(n):  # photographs come in many sizes; the views crop and resize them
                size = (int(rng.integers(40, 90)), int(rng.integers(40, 90)))
                pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / "in" / split / wnid / f"{i}.JPEG")
    overrides = {"cache_side": 0, "image_folder": str(tmp_path / "in"), "batch_size": 16, "epochs": 1}
    recipe = get_recipe("imagenet-esimclr", "smoke", overrides)
    data = recipe_data(recipe)
    assert data.train_x.dtype.kind == "U" and data.meta["counts"] == {"train": 40, "test": 10}
    record = pretrain(recipe, tmp_path / "run", progress=False)
    assert record["dataset"]["name"].startswith("ImageNet 2-class subset (original images, ")
    assert 0 <= record["metrics"]["knn_top1"] <= 100 and record["metrics"]["epochs_trained"] == 1
    with pytest.raises(EsslError, match="no ImageNet images at .*imagenet-1k .*--set image_folder=PATH"):
        recipe_data(get_recipe("imagenet-esimclr", "full"), tmp_path)
