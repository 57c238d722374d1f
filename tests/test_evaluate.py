import math

import numpy as np
import pytest
import torch

from essl_core.augment import CIFAR_MEAN, CIFAR_STD, normalize_uint8, plain_transform
from essl_core.evaluate import knn_predict, linear_probe
from essl_core.models import CifarResNet18


def test_knn_is_perfect_on_a_trivially_separable_set():
    torch.manual_seed(0)
    centers = torch.eye(10) * 5
    labels = torch.arange(10).repeat_interleave(30)
    bank = centers[labels] + 0.1 * torch.randn(300, 10)
    query_labels = torch.arange(10).repeat(7)
    queries = centers[query_labels] + 0.1 * torch.randn(70, 10)
    assert torch.equal(knn_predict(bank, labels, queries, k=200, t=0.1), query_labels)


def test_knn_votes_are_weighted_by_similarity():
    # Two far-but-many neighbours of class 1 lose to one very close neighbour of class 0 at low temperature.
    bank = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.6, 0.8]])
    labels = torch.tensor([0, 1, 1])
    assert knn_predict(bank, labels, torch.tensor([[1.0, 0.05]]), k=3, t=0.1).item() == 0
    assert knn_predict(bank, labels, torch.tensor([[1.0, 0.05]]), k=3, t=100.0).item() == 1


def test_linear_probe_changes_no_backbone_parameter_or_bn_statistic(small_cifar):
    torch.manual_seed(0)
    backbone = CifarResNet18(width=8).train()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    acc = linear_probe(backbone, small_cifar, torch.device("cpu"), epochs=1, batch_size=64, progress=False)
    after = backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert backbone.training  # the caller's module is left as it was
    assert 0.0 <= acc <= 100.0


def test_batched_normalisation_equals_the_per_image_test_transform(small_cifar):
    from PIL import Image

    imgs = small_cifar.test_x[:4]
    reference = torch.stack([plain_transform()(Image.fromarray(a)) for a in imgs])
    assert torch.allclose(normalize_uint8(torch.from_numpy(imgs)), reference, atol=1e-6)
    assert len(CIFAR_MEAN) == len(CIFAR_STD) == 3


def test_real_copy_has_cifar_statistics(cifar):
    assert cifar.train_x.shape == (50000, 32, 32, 3) and cifar.test_x.shape == (10000, 32, 32, 3)
    assert np.bincount(cifar.train_y).tolist() == [5000] * 10
    assert np.bincount(cifar.test_y).tolist() == [1000] * 10
    mean = cifar.train_x.reshape(-1, 3).mean(0) / 255
    assert np.allclose(mean, [0.491, 0.481, 0.444], atol=0.005)  # RGB order and decoding are right


def test_probe_protocols_report_final_or_best_and_step_their_schedule(small_cifar, monkeypatch):
    import essl_core.evaluate as ev

    scores = iter([10.0, 30.0, 20.0])
    tested, lrs = [], []
    monkeypatch.setattr(ev, "_test_accuracy", lambda *a: tested.append(1) or next(scores))
    original_step = torch.optim.SGD.step

    def record_lr(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", record_lr)
    data = small_cifar.subset(128, 40, seed=0)
    backbone = CifarResNet18(width=4)
    best = linear_probe(backbone, data, torch.device("cpu"), epochs=3, batch_size=64, lr=1.0, progress=False,
                        protocol=ev.PROBES["imagenet-barlowtwins"], image_size=32)  # fmt: skip
    assert best == 30.0 and len(tested) == 3  # tested after every epoch, the best reported
    # Per-epoch cosine: two steps per epoch share one lr, 1.0, then 0.75, then 0.25.
    assert lrs == pytest.approx([1.0, 1.0, 0.75, 0.75, 0.25, 0.25])
    lrs.clear()
    scores, tested[:] = iter([42.0]), []
    final = linear_probe(backbone, data, torch.device("cpu"), epochs=3, batch_size=64, lr=1.0, progress=False)
    assert final == 42.0 and len(tested) == 1  # CIFAR-10: tested once, after the last epoch
    assert lrs == pytest.approx([0.5 * (1 + math.cos(math.pi * i / 6)) for i in range(6)])  # per-step cosine


def test_imagenet_probe_head_starts_small_and_simsiam_probe_uses_lars(small_cifar, monkeypatch):
    import essl_core.evaluate as ev
    from essl_core.lars import LARS

    made = []
    monkeypatch.setattr(ev, "LARS", lambda params, **kw: made.append(kw) or LARS(params, **kw))
    heads = []
    monkeypatch.setattr(ev, "_test_accuracy", lambda frozen, head, *a: heads.append(head) or 0.0)
    data = small_cifar.subset(64, 20, seed=0)
    linear_probe(CifarResNet18(width=4), data, torch.device("cpu"), epochs=1, batch_size=64, lr=0.0,
                 progress=False, protocol=ev.PROBES["imagenet-simsiam"])  # fmt: skip
    assert made == [{"lr": 0.0, "weight_decay": 0.0, "momentum": 0.9}]
    w, b = heads[0].weight.detach(), heads[0].bias.detach()
    assert abs(float(w.std()) - 0.01) < 0.002 and torch.equal(b, torch.zeros_like(b))  # lr 0: still as initialised
    linear_probe(CifarResNet18(width=4), data, torch.device("cpu"), epochs=1, batch_size=64, lr=0.1,
                 progress=False, protocol=ev.PROBES["imagenet-simsiam"])  # fmt: skip
    assert made[-1]["lr"] == pytest.approx(0.1 * 64 / 256)  # the official SimSiam probe: lr x batch/256


def test_transformation_probabilities_are_the_heads_softmax_on_each_rotated_small_view(cifar):
    import torch.nn.functional as F

    from essl_core.augment import normalize_pixels, to_pixels
    from essl_core.evaluate import transformation_probabilities
    from essl_core.methods import build_model
    from essl_core.recipes import get_recipe

    torch.manual_seed(0)
    model = build_model(get_recipe("cifar10-esimclr", "smoke"))
    images, _ = cifar.test_sample(3)
    probs = transformation_probabilities(model, images, torch.device("cpu"))
    assert probs.shape == (3, 4, 4) and np.allclose(probs.sum(-1), 1.0, atol=1e-5)
    # By hand for image 2 turned by 270 degrees: resize to the rotation view's side, turn, normalise, predict.
    side = model.recipe.rot_size
    x = F.interpolate(to_pixels(torch.from_numpy(images[2:3])), size=(side, side), mode="bilinear", antialias=True)
    with torch.no_grad():
        model.eval()
        logits = model.equivariance.head(model.backbone(normalize_pixels(torch.rot90(x.clamp(0, 1), 3, (2, 3)))))
    assert np.allclose(probs[2, 3], logits.softmax(1)[0].numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="no E-branch"):
        transformation_probabilities(build_model(get_recipe("cifar10-simclr", "smoke")), images, torch.device("cpu"))


def test_a_class_balanced_test_sample_interleaves_each_classs_first_images(cifar):
    from essl_core.errors import EsslError

    x, y = cifar.test_sample(25)
    assert y.tolist() == [i % 10 for i in range(25)]  # the cache itself is sorted by class
    first_cat = int(np.flatnonzero(cifar.test_y == 3)[1])
    assert np.array_equal(x[13], cifar.test_x[first_cat])  # the 2nd cat image of the split, in its order
    with pytest.raises(EsslError, match="class-balanced sample of 10010"):
        cifar.test_sample(10_010)
