import pytest

from essl_core.errors import EsslError
from essl_core.recipes import get_recipe, recipe_names, recipe_overrides
from essl_core.tiers import TIERS, default_tier, get_tier


def test_full_tier_is_the_paper():
    for name in (n for n in recipe_names() if n.startswith("cifar10-")):  # ImageNet's: test_imagenet_recipes
        r = get_recipe(name, "full")
        assert (r.epochs, r.batch_size, r.momentum, r.weight_decay, r.warmup_epochs) == (800, 512, 0.9, 5e-4, 10)
        assert (r.width, r.proj_hidden, r.proj_dim, r.rot_hidden, r.rot_size) == (64, 2048, 2048, 2048, 16)
        assert (r.temperature, r.ssl_loss, r.crop_scale) == (0.5, "cross_view", (0.2, 1.0))
        assert (r.knn_k, r.knn_t, r.probe_epochs, r.probe_lr, r.probe_runs) == (200, 0.1, 100, 30.0, 5)
        assert r.seed == 42 and r.train_subset is None and r.test_subset is None


@pytest.mark.parametrize(
    ("name", "method", "lr", "lmbd", "eff"),
    [
        ("cifar10-simclr", "simclr", 0.03, 0.0, 0.06),
        ("cifar10-esimclr", "simclr", 0.06, 0.4, 0.12),
        ("cifar10-simsiam", "simsiam", 0.03, 0.0, 0.06),
        ("cifar10-esimsiam", "simsiam", 0.06, 0.4, 0.12),
    ],
)
def test_e_variants_double_the_learning_rate(name, method, lr, lmbd, eff):
    r = get_recipe(name, "full")
    assert (r.method, r.lr, r.lmbd) == (method, lr, lmbd)
    assert r.effective_lr == pytest.approx(eff)


def test_tiers_keep_the_recipe_and_shrink_the_budget():
    for tier in TIERS:
        r = get_recipe("cifar10-esimclr", tier)
        assert (r.lr, r.lmbd, r.temperature, r.rot_size, r.method) == (0.06, 0.4, 0.5, 16, "simclr")


def test_overrides_are_typed_and_checked():
    o = recipe_overrides(["epochs=3", "lr=0.1", "train-subset=none", "crop_scale=0.3,1.0", "ssl_loss=ntxent"])
    assert o == {"epochs": 3, "lr": 0.1, "train_subset": None, "crop_scale": (0.3, 1.0), "ssl_loss": "ntxent"}
    r = get_recipe("cifar10-esimclr", "smoke", {"epochs": 5, "crop_scale": (0.3, 1.0)})
    assert r.epochs == 5 and r.width == 8
    assert (r.tier, r.overrides) == ("smoke", ("crop_scale=[0.3, 1.0]", "epochs=5"))  # recorded with the run
    with pytest.raises(EsslError, match="unknown option 'epoch'"):
        recipe_overrides(["epoch=3"])
    with pytest.raises(EsslError, match="bad value for epochs"):
        recipe_overrides(["epochs=three"])
    with pytest.raises(EsslError, match="unknown recipe"):
        get_recipe("cifar10-byol")
    with pytest.raises(EsslError, match="unknown tier"):
        get_recipe("cifar10-simclr", "huge")
    with pytest.raises(EsslError, match="ssl_loss"):
        get_recipe("cifar10-simclr", "smoke", {"ssl_loss": "triplet"})
    assert get_recipe("cifar10-simclr", "smoke", {"invariance": "vflip+rotation"}).invariance == "vflip+rotation"
    for bad in ("vflip+zoom", "vflip+vflip", "vflip,rotation"):
        with pytest.raises(EsslError, match="invariance and equivariance must be one of"):
            get_recipe("cifar10-simclr", "smoke", {"invariance": bad})


def test_view_pipeline_and_compile_options():
    assert get_recipe("cifar10-esimclr").augment == "batched" and not get_recipe("cifar10-esimclr").compile
    assert recipe_overrides(["augment=reference", "compile=true"]) == {"augment": "reference", "compile": True}
    assert recipe_overrides(["compile=off"]) == {"compile": False}
    with pytest.raises(EsslError, match="bad value for compile"):
        recipe_overrides(["compile=maybe"])
    with pytest.raises(EsslError, match="augment must be batched or reference"):
        get_recipe("cifar10-simclr", "smoke", {"augment": "kornia"})


def test_one_definition_of_the_tiers(monkeypatch):
    assert list(TIERS) == ["smoke", "cpu", "colab", "full"] and get_tier("full").cifar == {}
    assert get_recipe("cifar10-simclr", "cpu").width == get_tier("cpu").cifar["width"] == 16
    monkeypatch.setenv("ESSL_MODE", "cpu")
    assert default_tier() == "cpu"
    monkeypatch.setenv("ESSL_MODE", "tiny")
    with pytest.raises(EsslError, match="unknown tier 'tiny'"):
        default_tier()
    monkeypatch.delenv("ESSL_MODE")
    assert default_tier() == "smoke"


def test_photonics_is_configured_like_cifar():
    from essl_core.photonics.config import get_photonics_recipe, photonics_overrides

    full = get_photonics_recipe("full")
    assert (full.lmbd, full.temperature, full.pretrain_epochs, full.unlabelled_count("blob")) == (5.0, 0.1, 200, 15000)
    assert full.unlabelled_count("gpm") == 20480
    cpu = get_photonics_recipe("cpu", photonics_overrides(["lmbd=2", "label_counts=100,300"]))
    assert (cpu.lmbd, cpu.label_counts, cpu.width, cpu.unlabelled_count("blob")) == (2.0, (100, 300), 0.25, 4096)
    assert cpu.overrides == ("label_counts=[100, 300]", "lmbd=2.0")
    with pytest.raises(EsslError, match="unknown option 'alpha'"):
        photonics_overrides(["alpha=5"])
    with pytest.raises(EsslError, match="label_counts must be <= train_pool"):
        get_photonics_recipe("smoke", {"label_counts": (100,)})


def test_the_colab_tier_is_the_full_network_and_data_for_fewer_epochs():
    full, colab = get_recipe("cifar10-esimclr", "full"), get_recipe("cifar10-esimclr", "colab")
    same = ("width", "proj_hidden", "proj_dim", "rot_hidden", "batch_size", "train_subset", "test_subset", "lr", "lmbd")
    assert all(getattr(colab, k) == getattr(full, k) for k in same)
    assert (colab.epochs, colab.amp, colab.augment) == (40, "fp16", "batched")  # a T4 has no bf16
