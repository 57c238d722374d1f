import torch

from essl_core.methods import EsslModel
from essl_core.recipes import get_recipe


def _model(name: str, **kw) -> EsslModel:
    return EsslModel(get_recipe(name, "smoke", kw))


def test_esimclr_runs_three_separate_backbone_passes_with_the_rotation_batch_last():
    model = _model("cifar10-esimclr")
    shapes = []
    model.backbone.register_forward_hook(lambda m, inp, out: shapes.append(tuple(inp[0].shape)))
    x1, x2, x3 = torch.randn(8, 3, 32, 32), torch.randn(8, 3, 32, 32), torch.randn(8, 3, 16, 16)
    out = model(x1, x2, x3)
    assert shapes == [(8, 3, 32, 32), (8, 3, 32, 32), (32, 3, 16, 16)]
    assert set(out) == {"ssl", "rot", "rot_acc", "loss"}
    assert torch.allclose(out["loss"], out["ssl"] + 0.4 * out["rot"])
    # BatchNorm statistics are updated once per pass.
    assert int(model.backbone.stem[1].num_batches_tracked) == 3
    assert model.view_sizes() == [32, 32, 16]


def test_rotation_loss_trains_backbone_and_head_but_not_projector():
    model = _model("cifar10-esimclr")
    loss, acc = model.rotation_loss(torch.randn(8, 3, 16, 16))
    loss.backward()
    assert all(p.grad is None for p in model.projector.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.rotation_head.parameters())
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0
    assert 0.0 <= acc.item() <= 1.0


def test_baselines_have_no_rotation_branch_and_simsiam_has_a_predictor():
    simclr = _model("cifar10-simclr")
    assert simclr.rotation_head is None and simclr.predictor is None and simclr.view_sizes() == [32, 32]
    out = simclr(torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32))
    assert set(out) == {"ssl", "loss"}
    esimsiam = _model("cifar10-esimsiam")
    assert esimsiam.predictor is not None
    assert not any(isinstance(m, torch.nn.ReLU) for m in list(esimsiam.rotation_head)[4:])
    main = {id(p) for p in esimsiam.main_parameters()}
    assert not any(id(p) in main for p in esimsiam.predictor.parameters())
    assert all(id(p) in main for p in esimsiam.rotation_head.parameters())
    out = esimsiam(torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32), torch.randn(4, 3, 16, 16))
    assert -1.0 <= out["ssl"].item() <= 1.0


def test_ntxent_option_changes_the_loss():
    x = [torch.randn(6, 3, 32, 32), torch.randn(6, 3, 32, 32)]
    torch.manual_seed(0)
    a = _model("cifar10-simclr").eval()
    torch.manual_seed(0)
    b = _model("cifar10-simclr", ssl_loss="ntxent").eval()
    assert a(*x)["ssl"].item() != b(*x)["ssl"].item()
