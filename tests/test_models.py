import torch
from torch import nn

from essl_core.models import BasicBlock, CifarResNet18, mlp_projector, rotation_head, simsiam_predictor


def test_cifar_resnet18_matches_spec():
    net = CifarResNet18()
    stem_conv = net.stem[0]
    assert (stem_conv.kernel_size, stem_conv.stride, stem_conv.out_channels) == ((3, 3), (1, 1), 64)
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.modules())
    assert not any(isinstance(m, nn.Linear) for m in net.modules())  # no fc layer
    stages = [net.layer1, net.layer2, net.layer3, net.layer4]
    assert [len(s) for s in stages] == [2, 2, 2, 2]
    assert all(isinstance(b, BasicBlock) for s in stages for b in s)
    assert [s[0].conv1.stride[0] for s in stages] == [1, 2, 2, 2]
    assert [s[0].conv2.out_channels for s in stages] == [64, 128, 256, 512]
    assert sum(p.numel() for p in net.parameters()) == 11_168_832  # torchvision resnet18 minus fc/7x7 stem
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 512)
    # A 16x16 input reaches the pooling as a 2x2 map.
    trunk = nn.Sequential(net.stem, *stages)
    assert trunk(torch.randn(2, 3, 16, 16)).shape == (2, 512, 2, 2)


def test_width_option_scales_features():
    assert CifarResNet18(width=16)(torch.randn(2, 3, 32, 32)).shape == (2, 128)


def _types(seq):
    return [type(m) for m in seq]


def test_projector_ends_in_affine_free_batchnorm_without_biases():
    proj = mlp_projector(512, 2048, 2048)
    assert _types(proj) == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d]
    assert proj[0].bias is None and proj[3].bias is None
    assert proj[1].affine and not proj[4].affine
    assert (proj[0].in_features, proj[0].out_features, proj[3].out_features) == (512, 2048, 2048)


def test_simsiam_predictor():
    pred = simsiam_predictor(2048, 512)
    assert _types(pred) == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert pred[0].bias is None and pred[3].bias is not None
    assert (pred[0].out_features, pred[3].out_features) == (512, 2048)


def test_rotation_heads_differ_by_one_relu():
    simclr, simsiam = rotation_head(512, 2048, 4, True), rotation_head(512, 2048, 4, False)
    assert _types(simclr) == [nn.Linear, nn.LayerNorm, nn.ReLU, nn.Linear, nn.LayerNorm, nn.ReLU, nn.Linear]
    assert _types(simsiam) == [nn.Linear, nn.LayerNorm, nn.ReLU, nn.Linear, nn.LayerNorm, nn.Linear]
    assert all(m.bias is not None for m in simclr if isinstance(m, nn.Linear))
    assert [m.out_features for m in simclr if isinstance(m, nn.Linear)] == [2048, 2048, 4]
    assert simclr(torch.randn(3, 512)).shape == (3, 4)
