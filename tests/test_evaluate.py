import numpy as np
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
