import pytest
import torch

from essl_core.errors import EsslError
from essl_core.methods import METHODS, BarlowTwins, Method, SimCLR, SimSiam, build_model
from essl_core.recipes import get_recipe, recipe_names


def _model(name: str, **kw) -> Method:
    return build_model(get_recipe(name, "smoke", kw))


def _views(n: int, e_branch: bool) -> list[torch.Tensor]:
    views = [torch.randn(n, 3, 32, 32), torch.randn(n, 3, 32, 32)]
    return [*views, torch.randn(n, 3, 16, 16)] if e_branch else views


def test_the_registry_builds_every_recipe_and_rejects_unknown_methods():
    assert set(METHODS) == {"simclr", "simsiam", "barlowtwins"}
    for name in recipe_names():
        recipe = get_recipe(name, "smoke")
        model = build_model(recipe)
        assert isinstance(model, METHODS[recipe.method])
        assert (model.equivariance is not None) == (recipe.lmbd > 0)
        labels = torch.arange(4) if recipe.online_head else None  # the ImageNet online classifier's
        out = model(*_views(4, recipe.lmbd > 0), labels=labels)
        assert torch.isfinite(out["loss"])
    with pytest.raises(EsslError, match="method must be one of simclr, simsiam, barlowtwins"):
        get_recipe("cifar10-simclr", "smoke", {"method": "byol"})


def test_esimclr_runs_three_separate_backbone_passes_with_the_rotation_batch_last():
    model = _model("cifar10-esimclr")
    shapes = []
    model.backbone.register_forward_hook(lambda m, inp, out: shapes.append(tuple(inp[0].shape)))
    out = model(*_views(8, True))
    assert shapes == [(8, 3, 32, 32), (8, 3, 32, 32), (32, 3, 16, 16)]
    assert set(out) == {"ssl", "rot", "rot_acc", "loss"}
    assert torch.allclose(out["loss"], out["ssl"] + 0.4 * out["rot"])
    # BatchNorm statistics are updated once per pass.
    assert int(model.backbone.stem[1].num_batches_tracked) == 3
    assert model.view_sizes() == [32, 32, 16]


def test_e_branch_trains_backbone_and_head_but_not_projector():
    model = _model("cifar10-esimclr")
    loss, acc = model.equivariance.loss(model.backbone, torch.randn(8, 3, 16, 16))
    loss.backward()
    assert all(p.grad is None for p in model.projector.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.equivariance.head.parameters())
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0
    assert 0.0 <= acc.item() <= 1.0


def _relu_after_second_layer_norm(model: Method) -> bool:
    return any(isinstance(m, torch.nn.ReLU) for m in list(model.equivariance.head)[4:])


def test_heads_of_each_method():
    simclr = _model("cifar10-simclr")
    assert isinstance(simclr, SimCLR) and simclr.equivariance is None and simclr.view_sizes() == [32, 32]
    assert set(simclr(*_views(4, False))) == {"ssl", "loss"}
    assert _relu_after_second_layer_norm(_model("cifar10-esimclr"))

    esimsiam = _model("cifar10-esimsiam")
    assert isinstance(esimsiam, SimSiam) and not _relu_after_second_layer_norm(esimsiam)
    scheduled, fixed = esimsiam.param_groups()
    assert (scheduled["scheduled"], fixed["scheduled"]) == (True, False)
    assert {id(p) for p in fixed["params"]} == {id(p) for p in esimsiam.predictor.parameters()}
    assert {id(p) for p in scheduled["params"]} | {id(p) for p in fixed["params"]} == {
        id(p) for p in esimsiam.parameters()
    }
    assert -1.0 <= esimsiam(*_views(4, True))["ssl"].item() <= 1.0

    ebt = _model("cifar10-ebarlowtwins")
    assert isinstance(ebt, BarlowTwins) and not _relu_after_second_layer_norm(ebt)
    linears = [m for m in ebt.projector if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3 and all(m.bias is None for m in linears)
    assert [type(m) for m in ebt.projector][-1] is torch.nn.Linear  # the loss standardises the output
    assert len(ebt.param_groups()) == 1


def test_ssl_scale_multiplies_the_ssl_term_only():
    recipe = get_recipe("cifar10-ebarlowtwins", "smoke")
    assert (recipe.ssl_scale, recipe.lmbd) == (0.1, 0.2)
    model = build_model(recipe).eval()
    out = model(*_views(6, True))
    assert torch.allclose(out["loss"], 0.1 * out["ssl"] + 0.2 * out["rot"])


def test_ntxent_option_changes_the_loss():
    x = _views(6, False)
    torch.manual_seed(0)
    a = _model("cifar10-simclr").eval()
    torch.manual_seed(0)
    b = _model("cifar10-simclr", ssl_loss="ntxent").eval()
    assert a(*x)["ssl"].item() != b(*x)["ssl"].item()
