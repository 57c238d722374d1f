import json
import math

import pytest
import torch

from essl_core.augment import ssl_view
from essl_core.checkpoint import load_checkpoint
from essl_core.errors import EsslError
from essl_core.methods import Method, build_model
from essl_core.recipes import get_recipe
from essl_core.runs import pretrain
from essl_core.schedule import cosine_lr
from essl_core.train import NonFiniteLoss, Trainer

SMALL = {"train_subset": 640, "test_subset": 200, "probe_runs": 1, "probe_epochs": 1}


def test_schedule_warms_up_linearly_then_cosine_to_zero():
    assert cosine_lr(0, 100, 1.0, 10) == 0.0
    assert cosine_lr(5, 100, 1.0, 10) == pytest.approx(0.5)
    assert cosine_lr(10, 100, 1.0, 10) == pytest.approx(1.0)
    assert cosine_lr(55, 100, 1.0, 10) == pytest.approx(0.5)
    assert cosine_lr(99, 100, 1.0, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 89 / 90)))
    # Without warm-up (the photonics pretraining and the linear probe): a plain half-cosine.
    assert cosine_lr(0, 100, 1e-3) == 1e-3
    assert cosine_lr(50, 100, 1e-3) == pytest.approx(5e-4)
    assert cosine_lr(100, 100, 1e-3) == pytest.approx(0.0)
    # The ImageNet schedule ends at 0.001 x base: base * q + 0.001 * base * (1 - q), q the half-cosine.
    assert cosine_lr(100, 100, 4.8, 10, final_ratio=0.001) == pytest.approx(0.0048)
    assert cosine_lr(55, 100, 4.8, 10, final_ratio=0.001) == pytest.approx(4.8 * 0.5 + 0.0048 * 0.5)


def _fixed_views(data, sizes, n=64):
    from PIL import Image

    torch.manual_seed(0)
    imgs = [Image.fromarray(a) for a in data.train_x[:n]]
    return [torch.stack([ssl_view(s)(im) for im in imgs]) for s in sizes]


@pytest.mark.parametrize("name", ["cifar10-esimclr", "cifar10-esimsiam"])
def test_loss_falls_over_20_steps_on_a_real_batch(small_cifar, tmp_path, name):
    recipe = get_recipe(name, "smoke", {**SMALL, "warmup_epochs": 0, "epochs": 20})
    trainer = Trainer(recipe, tmp_path, torch.device("cpu"), small_cifar, progress=False)
    views = _fixed_views(small_cifar, trainer.model.view_sizes())
    losses = [trainer._train_step(views) for _ in range(20)]
    first, last = losses[0], losses[-1]
    assert all(torch.isfinite(o["loss"]) for o in losses)
    assert last["loss"] < first["loss"] - 0.1
    assert last["rot"] < first["rot"]  # the E-SSL term is learned too


def test_optimizers_follow_the_recipe(small_cifar, tmp_path):
    recipe = get_recipe("cifar10-esimsiam", "smoke", SMALL)
    trainer = Trainer(recipe, tmp_path, torch.device("cpu"), small_cifar, progress=False)
    main_params = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    bn = trainer.model.backbone.stem[1]
    assert id(bn.weight) in main_params and id(bn.bias) in main_params  # weight decay on BN too
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 5e-4
    views = _fixed_views(small_cifar, trainer.model.view_sizes(), n=16)
    for _ in range(3):
        trainer._train_step(views)
    main, predictor = trainer.optimizer.param_groups
    assert main["lr"] != recipe.effective_lr  # in warm-up
    assert predictor["lr"] == recipe.effective_lr and not predictor["scheduled"]  # constant predictor lr
    assert {id(p) for p in predictor["params"]} == {id(p) for p in trainer.model.predictor.parameters()}


def test_one_optimizer_with_a_predictor_group_steps_as_the_official_two_optimizers(small_cifar, tmp_path):
    """SimSiam's constant-lr predictor: a parameter group of the one optimizer gives, step for step, the same
    parameters as the official code's second optimizer over the predictor alone."""
    recipe = get_recipe("cifar10-esimsiam", "smoke", SMALL)
    trainer = Trainer(recipe, tmp_path, torch.device("cpu"), small_cifar, progress=False)
    twin = build_model(recipe)
    twin.load_state_dict(trainer.model.state_dict())
    predictor = {id(p) for p in twin.predictor.parameters()}
    sgd = dict(lr=recipe.effective_lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    main_opt = torch.optim.SGD([p for p in twin.parameters() if id(p) not in predictor], **sgd)
    pred_opt = torch.optim.SGD(twin.predictor.parameters(), **sgd)
    views = _fixed_views(small_cifar, trainer.model.view_sizes(), n=16)
    for step in range(4):
        torch.manual_seed(step)  # the same E-branch draws in both
        trainer._train_step(views)
        for group in main_opt.param_groups:
            group["lr"] = cosine_lr(step, trainer.total_steps, recipe.effective_lr, trainer.warmup_steps)
        torch.manual_seed(step)
        out = twin(*views)
        main_opt.zero_grad(set_to_none=True)
        pred_opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        main_opt.step()
        pred_opt.step()
    for (name, a), b in zip(trainer.model.state_dict().items(), twin.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def _interrupt_at(monkeypatch, step: int):
    original = Trainer._train_step

    def step_or_interrupt(self, views):
        if self.step == step:
            raise KeyboardInterrupt
        return original(self, views)

    monkeypatch.setattr(Trainer, "_train_step", step_or_interrupt)


@pytest.mark.parametrize("augment", ["batched", "reference"])
def test_resumed_run_reproduces_the_uninterrupted_run_exactly(cifar_root, tmp_path, monkeypatch, augment):
    recipe = get_recipe("cifar10-esimclr", "smoke", {**SMALL, "epochs": 3, "augment": augment})
    full = pretrain(recipe, tmp_path / "a", data_root=cifar_root, progress=False)

    with monkeypatch.context() as m:
        _interrupt_at(m, 23)  # in the middle of epoch 3
        with pytest.raises(Exception, match="interrupted at epoch 3"):
            pretrain(recipe, tmp_path / "b", data_root=cifar_root, progress=False)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["epoch"] == 2
    resumed = pretrain(recipe, tmp_path / "b", data_root=cifar_root, progress=False)

    assert resumed["curves"]["loss"] == full["curves"]["loss"]
    assert resumed["curves"]["rot"] == full["curves"]["rot"]
    assert resumed["curves"]["knn_top1"] == full["curves"]["knn_top1"]
    a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [seg["from_epoch"] for seg in resumed["provenance"]["training_segments"]] == [0, 2]
    # A finished run is not trained again: its record is returned (and copied to the record directory).
    monkeypatch.setattr(Trainer, "fit", lambda self: pytest.fail("a complete run was trained again"))
    again = pretrain(recipe, tmp_path / "b", data_root=cifar_root, progress=False, record_dir=tmp_path / "r")
    assert again == resumed and (tmp_path / "r" / "cifar10-esimclr-smoke-s42.json").exists()
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2, 3]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(cifar_root, tmp_path, monkeypatch):
    recipe = get_recipe("cifar10-esimclr", "smoke", SMALL)
    original = Method.forward
    calls = {"n": 0}

    def poisoned(self, *views, **kwargs):
        out = original(self, *views, **kwargs)
        calls["n"] += 1
        if calls["n"] == 14:  # global step 14, in epoch 2
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(Method, "forward", poisoned)
    with pytest.raises(NonFiniteLoss, match=r"step 14 \(epoch 2\).*epoch 1 in"):
        pretrain(recipe, tmp_path, data_root=cifar_root, progress=False)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert not (tmp_path / "result.json").exists()


def test_a_checkpoint_of_the_older_format_is_refused_in_one_line(small_cifar, tmp_path):
    recipe = get_recipe("cifar10-esimclr", "smoke", SMALL)
    trainer = Trainer(recipe, tmp_path, torch.device("cpu"), small_cifar, progress=False)
    trainer.save()
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    payload["format"] = "essl-checkpoint/1"  # two optimizers and `rotation_head.*` keys
    torch.save(payload, tmp_path / "checkpoint.pt")
    with pytest.raises(EsslError, match="older essl_core .*--restart"):
        load_checkpoint(tmp_path / "checkpoint.pt", recipe)


@pytest.mark.parametrize(
    "name, loss", [("cifar10-esimclr", "cross_view"), ("cifar10-simclr", "ntxent"), ("cifar10-esimsiam", "cross_view")]
)
def test_a_training_step_makes_no_host_round_trip(small_cifar, tmp_path, monkeypatch, name, loss):
    """On CUDA, turning Python data into a tensor, `.item()`, `.cpu()`, `.tolist()` or `.numpy()` waits for the
    GPU. None may happen in a step of the batched path (views, forward, loss, backward, optimizer); checked here
    on the CPU by making each of them fail. (A tensor made on the CPU and then moved is not caught here.)"""
    recipe = get_recipe(name, "smoke", {**SMALL, "ssl_loss": loss})
    trainer = Trainer(recipe, tmp_path, torch.device("cpu"), small_cifar, progress=False)
    steps = trainer.views.epoch(0)
    trainer._train_step(next(steps))  # the first step makes the per-device constants

    def round_trip(*args, **kwargs):
        raise AssertionError("a host round-trip inside the training step")

    for owner, name_ in [(torch, "tensor"), (torch, "as_tensor")] + [
        (torch.Tensor, n) for n in ("item", "cpu", "tolist", "numpy")
    ]:
        monkeypatch.setattr(owner, name_, round_trip)
    for _ in range(2):
        out = trainer._train_step(next(steps))
    monkeypatch.undo()
    assert torch.isfinite(out["loss"])
