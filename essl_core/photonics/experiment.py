"""The photonics experiment (paper §3.5): SimCLR, SimCLR + transformation, E-SimCLR and no pretraining, each
fine-tuned to regress the DOS of labelled cells, over a sweep of label counts and seeds.

Faithful to the official code: NT-Xent at T = 0.1 on the projector, the E-branch on the raw batch's four
transformed copies (alpha = 5), SGD 1e-3 with a per-step cosine over E + 1 epochs and unshuffled batches,
encoder checkpoints after E/2 and E epochs, Adam 1e-4 fine-tuning on DOS minus the empty lattice with the
same symmetry augmentations. Fixed: model selection. The official number is the minimum *test* error over
checkpoints and epochs; we select on a validation split and also report that official protocol, labelled.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..augment import epoch_seed
from ..data import data_root
from ..errors import EsslError
from ..groups import HALF_TRANSLATION, ROTATION, Group
from ..io import atomic_write, write_json
from ..losses import nt_xent
from ..results import make_record, peak_memory, provenance, read_record, write_record
from ..train import resolve_device
from .dataset import PhcData, eldiff_baseline, load_h5, relative_error
from .models import DosNet, PhcEncoder, projector, transformation_classifier
from .symmetry import random_symmetry

TEMPERATURE = 0.1
ALPHA = 5.0
PRETRAIN_LR = 1e-3
FINETUNE_LR, FINETUNE_WD, FINETUNE_BATCH = 1e-4, 1e-5, 64
LABELLED_SEED, UNLABELLED_SEED, SPLIT_SEED = 1, 99, 0


@dataclass(frozen=True)
class Mode:
    """What the two SSL views get (also used when fine-tuning) and, for E-SimCLR, the group to predict."""

    augmentations: tuple[str, ...]
    equivariance: Group | None = None
    pretrain: bool = True


# paper_spec §3.5 (load_config.py): the transformation E-SimCLR predicts is the one SimCLR+Trans adds.
MODES: dict[str, dict[str, Mode]] = {
    "blob": {
        "none": Mode(("flip", "rotate"), pretrain=False),
        "simclr": Mode(("flip", "rotate")),
        "simclr_trans": Mode(("translate_half", "flip", "rotate")),
        "simclr_ee": Mode(("flip", "rotate"), HALF_TRANSLATION),
    },
    "gpm": {
        "none": Mode(("translate_any", "flip"), pretrain=False),
        "simclr": Mode(("translate_any", "flip")),
        "simclr_trans": Mode(("translate_any", "flip", "rotate")),
        "simclr_ee": Mode(("translate_any", "flip"), ROTATION),
    },
}
MODE_LABELS = {
    "none": "no pretraining",
    "simclr": "SimCLR",
    "simclr_trans": "SimCLR + transformation",
    "simclr_ee": "E-SimCLR",
}


@dataclass(frozen=True)
class PhotonicsTier:
    """Sizes of one tier. The labelled file holds test, then validation, then the training pool."""

    name: str
    test: int
    val: int
    train_pool: int
    unlabelled: int
    label_counts: tuple[int, ...]
    seeds: tuple[int, ...]
    width: float  # encoder channel multiplier (1 = the paper's)
    pretrain_epochs: int  # checkpoints after half of them and after all
    batch_ssl: int
    finetune_epochs: int

    @property
    def labelled(self) -> int:
        return self.test + self.val + self.train_pool


TIERS = {
    "smoke": PhotonicsTier("smoke", 8, 8, 16, 256, (8, 16), (1,), 0.125, 2, 64, 3),
    "cpu": PhotonicsTier("cpu", 500, 250, 1000, 4096, (100, 300, 1000), (1, 2), 0.25, 12, 256, 25),
    # The paper's sizes: 15,000 (blob) or 20,480 (gpm) unlabelled cells, 3,000 labels, 2,000 test cells, 200
    # pretraining and 100 fine-tuning epochs, 3 seeds; plus a validation split of 500 for honest selection.
    "full": PhotonicsTier("full", 2000, 500, 3000, 20480, (100, 300, 1000, 3000), (1, 2, 3), 1.0, 200, 256, 100),
}


def unlabelled_count(family: str, tier: PhotonicsTier) -> int:
    """The paper's blob set has 15,000 unlabelled cells where gpm has 20,480; smaller tiers use one size."""
    return 15000 if family == "blob" and tier.name == "full" else tier.unlabelled


def data_files(family: str, tier: PhotonicsTier, root: str | Path | None = None) -> tuple[Path, Path]:
    """The labelled and unlabelled files a tier uses (names as data_scripts.photonics makes them)."""
    folder = data_root(root) / "photonics"
    return (
        folder / f"{family}-{tier.labelled}-s{LABELLED_SEED}.h5",
        folder / f"{family}-{unlabelled_count(family, tier)}-s{UNLABELLED_SEED}-ul.h5",
    )


def prepare_data(
    family: str, tier: PhotonicsTier, root: str | Path | None = None, workers: int = 1
) -> tuple[Path, Path]:
    """Generate the tier's files where missing (resuming any interrupted generation)."""
    from data_scripts.photonics import generate

    labelled, unlabelled = data_files(family, tier, root)
    if not labelled.exists():
        generate(family, tier.labelled, labelled, LABELLED_SEED, workers, labelled=True)
    if not unlabelled.exists():
        generate(family, unlabelled_count(family, tier), unlabelled, UNLABELLED_SEED, workers, labelled=False)
    return labelled, unlabelled


@dataclass
class Splits:
    train_pool: PhcData
    val: PhcData
    test: PhcData


def split_labelled(data: PhcData, tier: PhotonicsTier) -> Splits:
    """A fixed permutation: test, then validation, then the training pool; label subsets are its prefixes."""
    if len(data) < tier.labelled:
        raise EsslError(f"the labelled file has {len(data)} cells; the {tier.name} tier needs {tier.labelled}")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(SPLIT_SEED))
    a, b = tier.test, tier.test + tier.val
    return Splits(data.subset(order[b : tier.labelled]), data.subset(order[a:b]), data.subset(order[:a]))


def cosine_lr(step: int, total: int, base: float) -> float:
    """Per-step cosine from base to 0 over `total` steps, no warm-up (the official Cosine_Scheduler)."""
    return base * 0.5 * (1 + math.cos(math.pi * step / total))


def pretrain(
    mode: Mode, tier: PhotonicsTier, unlabelled: torch.Tensor, run_dir: Path, device: torch.device, seed: int = 1
) -> dict:
    """SSL pretraining with a checkpoint after every epoch (resumed exactly). Returns the encoder states after
    half and all of the epochs, the loss curve and the wall time."""
    torch.manual_seed(seed)
    encoder, head = PhcEncoder(tier.width).to(device), projector().to(device)
    classifier = transformation_classifier(mode.equivariance.size).to(device) if mode.equivariance else None
    modules = torch.nn.ModuleList([m for m in (encoder, head, classifier) if m is not None])
    opt = torch.optim.SGD(modules.parameters(), lr=PRETRAIN_LR, momentum=0.9, weight_decay=0.0)
    x_all = unlabelled.to(device)
    steps = len(x_all) // tier.batch_ssl  # drop_last, and no shuffling: the same batches every epoch
    if steps == 0:
        raise EsslError(f"{len(x_all)} unlabelled cells are fewer than one batch of {tier.batch_ssl}")
    total = (tier.pretrain_epochs + 1) * steps  # the official schedule spans one more epoch than is kept
    checkpoints = (tier.pretrain_epochs // 2, tier.pretrain_epochs)
    state_path = run_dir / "pretrain.pt"
    state = {"epoch": 0, "curve": [], "encoders": {}, "seconds": 0.0}
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        modules.load_state_dict(state.pop("modules"))
        opt.load_state_dict(state.pop("optimizer"))
    bar = tqdm(range(state["epoch"], tier.pretrain_epochs), desc="pretrain", leave=False, file=sys.stderr)
    for epoch in bar:
        start = time.perf_counter()
        modules.train()
        gen = torch.Generator(device).manual_seed(epoch_seed(seed, epoch))
        losses = torch.zeros(2, device=device)
        for i in range(steps):
            for group in opt.param_groups:
                group["lr"] = cosine_lr(epoch * steps + i, total, PRETRAIN_LR)
            x = x_all[i * tier.batch_ssl : (i + 1) * tier.batch_ssl]
            z1 = head(encoder(random_symmetry(x, mode.augmentations, gen)))
            z2 = head(encoder(random_symmetry(x, mode.augmentations, gen)))
            loss = nt_xent(z1, z2, TEMPERATURE)
            ee = torch.zeros((), device=device)
            if classifier is not None:  # the raw batch, all copies in block layout
                copies, labels = mode.equivariance.orbit(x)
                ee = F.cross_entropy(classifier(encoder(copies)), labels)
            opt.zero_grad(set_to_none=True)
            (loss + ALPHA * ee).backward()
            opt.step()
            losses += torch.stack([loss.detach(), ee.detach()])
        cl, ee_loss = (losses / steps).tolist()
        if not math.isfinite(cl + ee_loss):
            raise EsslError(f"pretraining loss is not finite at epoch {epoch + 1}; delete {run_dir} to restart")
        state["curve"].append({"epoch": epoch + 1, "contrastive": cl, "equivariance": ee_loss if classifier else None})
        state["seconds"] += time.perf_counter() - start
        state["epoch"] = epoch + 1
        if epoch + 1 in checkpoints:
            state["encoders"][str(epoch + 1)] = {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()}
        payload = {**state, "modules": modules.state_dict(), "optimizer": opt.state_dict()}
        atomic_write(state_path, lambda fh, p=payload: torch.save(p, fh))
        bar.set_postfix(loss=f"{cl:.3f}", ee=f"{ee_loss:.3f}")
    return state


def _errors(model: DosNet, data: PhcData, baseline: torch.Tensor, device: torch.device) -> float:
    """Mean relative error of (model + EL) against the DOS on points 100..399, in eval mode."""
    model.eval()
    with torch.no_grad():
        preds = torch.cat([model(x.to(device)) for x in data.x.split(1024)]) + baseline
    return float(relative_error(preds, data.dos.to(device)).mean())


def finetune(
    encoder_state: dict | None, mode: Mode, tier: PhotonicsTier, train: PhcData, splits: Splits, seed: int, device
) -> dict:
    """Fine-tune encoder + DOS head; validation and test error before every epoch and after the last."""
    torch.manual_seed(seed)
    model = DosNet(tier.width).to(device)
    if encoder_state is not None:
        model.encoder.load_state_dict(encoder_state)
    opt = torch.optim.Adam(model.parameters(), lr=FINETUNE_LR, weight_decay=FINETUNE_WD)
    baseline = eldiff_baseline().to(device)
    x, target = train.x.to(device), train.dos.to(device) - baseline
    gen = torch.Generator(device).manual_seed(seed)
    curve = {"val": [], "test": []}
    for epoch in range(tier.finetune_epochs + 1):
        curve["val"].append(_errors(model, splits.val, baseline, device))
        curve["test"].append(_errors(model, splits.test, baseline, device))
        if epoch == tier.finetune_epochs:
            break
        model.train()
        order = torch.randperm(len(x), generator=gen, device=device)
        for batch in order.split(FINETUNE_BATCH):
            loss = F.mse_loss(model(random_symmetry(x[batch], mode.augmentations, gen)), target[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return curve


def select(curves: dict[str, dict]) -> dict:
    """Three readings of one fine-tuning seed's curves (one per encoder checkpoint):

    validation: the test error where the validation error is lowest (over checkpoints and evaluations);
    official: the lowest test error over checkpoints and the evaluations at the start of each epoch (paper);
    last: the test error after the last epoch from the last checkpoint.
    """
    points = [(c["val"][t], c["test"][t]) for c in curves.values() for t in range(len(c["val"]))]
    official = min(t for c in curves.values() for t in c["test"][:-1])
    last = curves[max(curves, key=int)]["test"][-1]
    return {"validation": min(points)[1], "official": official, "last": last}


def _summary(results: dict) -> dict:
    out = {}
    for count, by_seed in results.items():
        out[count] = {}
        for protocol in ("validation", "official", "last"):
            values = np.array([r["selected"][protocol] for r in by_seed.values()])
            out[count][protocol] = {"mean": float(values.mean()), "std": float(values.std()), "n": len(values)}
    return out


def run_mode(
    family: str, mode_name: str, tier: PhotonicsTier, files: tuple[Path, Path], runs_root: Path, device: torch.device
) -> dict:
    """Pretrain one mode (unless `none`), fine-tune for every label count and seed; returns its record."""
    mode = MODES[family][mode_name]
    run_dir = runs_root / f"photonics-{tier.name}" / f"{family}-{mode_name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    labelled = load_h5(files[0])
    splits = split_labelled(labelled, tier)
    pre = {"encoders": {"0": None}, "curve": [], "seconds": 0.0}
    if mode.pretrain:
        unlabelled = load_h5(files[1], labelled=False).x[: unlabelled_count(family, tier)]
        pre = pretrain(mode, tier, unlabelled, run_dir, device)
    results: dict[str, dict] = {}
    jobs = [(n, s) for n in tier.label_counts for s in tier.seeds]
    for count, seed in tqdm(jobs, desc=f"{family} {mode_name} fine-tuning", leave=False, file=sys.stderr):
        done = run_dir / f"finetune-n{count}-s{seed}.json"
        if done.exists():
            entry = json.loads(done.read_text())
        else:
            train = splits.train_pool.subset(torch.arange(count))
            curves = {
                ep: finetune(state, mode, tier, train, splits, seed, device) for ep, state in pre["encoders"].items()
            }
            entry = {"curves": curves, "selected": select(curves)}
            write_json(done, entry)
        results.setdefault(str(count), {})[str(seed)] = entry
    config = {"family": family, "mode": mode_name, "label": MODE_LABELS[mode_name], "tier": asdict(tier)}
    config.update(
        augmentations=list(mode.augmentations), equivariance=mode.equivariance.name if mode.equivariance else None
    )
    config.update(temperature=TEMPERATURE, alpha=ALPHA, pretrain_lr=PRETRAIN_LR, finetune_lr=FINETUNE_LR)
    return make_record(
        "photonics",
        tier=tier.name,
        config=config,
        dataset={
            "name": f"{family} cells ({labelled.source})",
            "files": [p.name for p in files],
            "splits": {"test": len(splits.test), "val": len(splits.val), "train_pool": len(splits.train_pool)},
        },
        pretraining={"curve": pre["curve"], "seconds": pre["seconds"]},
        results=results,
        summary=_summary(results),
        wall_seconds=time.perf_counter() - start,
        peak_memory=peak_memory(device),
        provenance=provenance(device),
    )


def record_name(tier: str, family: str, mode: str) -> str:
    return f"photonics-{tier}-{family}-{mode}.json"


def run_photonics(
    tier_name: str,
    families: tuple[str, ...] = ("blob", "gpm"),
    modes: tuple[str, ...] = ("none", "simclr", "simclr_trans", "simclr_ee"),
    *,
    device: str = "auto",
    data_dir: str | Path | None = None,
    runs_root: str | Path = "runs",
    record_dir: str | Path | None = None,
    workers: int = 1,
) -> list[dict]:
    """Data (generated where missing) and every mode of the experiment at a tier; finished runs are reused."""
    if tier_name not in TIERS:
        raise EsslError(f"unknown tier {tier_name!r}; choose from {', '.join(TIERS)}")
    tier, dev = TIERS[tier_name], resolve_device(device)
    records = []
    for family in families:
        if family not in MODES:
            raise EsslError(f"unknown dataset {family!r}; choose blob or gpm")
        files = prepare_data(family, tier, data_dir, workers)
        for mode in modes:
            if mode not in MODES[family]:
                raise EsslError(f"unknown mode {mode!r}; choose from {', '.join(MODES[family])}")
            final = Path(runs_root) / f"photonics-{tier.name}" / f"{family}-{mode}" / "record.json"
            record = read_record(final) if final.exists() else run_mode(family, mode, tier, files, Path(runs_root), dev)
            write_record(final, record)
            if record_dir is not None:
                write_record(Path(record_dir) / record_name(tier.name, family, mode), record)
            records.append(record)
    return records


def photonics_records(directory: str | Path, tier: str) -> list[dict]:
    """The experiment's committed records of one tier in `directory`."""
    return [read_record(p) for p in sorted(Path(directory).glob(f"photonics-{tier}-*.json"))]


def sweep(records: list[dict], protocol: str = "validation") -> dict[str, dict[str, dict[int, dict]]]:
    """family -> mode -> label count -> {mean, std, n} of the test error under one selection protocol."""
    out: dict[str, dict[str, dict[int, dict]]] = {}
    for r in records:
        c = r["config"]
        out.setdefault(c["family"], {})[c["mode"]] = {int(n): v[protocol] for n, v in r["summary"].items()}
    return out


def claim_rows(records: list[dict], claim: dict, protocol: str = "validation") -> list[dict]:
    """Per dataset, at the largest label count: the paper's direction and ours (mean test errors, with spread)."""
    rows = []
    pairs = {
        "simclr_ee_vs_simclr": ("simclr_ee", "E-SimCLR vs SimCLR"),
        "simclr_trans_vs_simclr": ("simclr_trans", "SimCLR + transformation vs SimCLR"),
    }
    for family, modes in sweep(records, protocol).items():
        for key, (mode, text) in pairs.items():
            if mode not in modes or "simclr" not in modes:
                continue
            count = max(set(modes[mode]) & set(modes["simclr"]))
            ours, base = modes[mode][count], modes["simclr"][count]
            diff = ours["mean"] - base["mean"]
            spread = max(ours["std"], base["std"])
            direction = "lower error" if diff < 0 else "higher error"
            if ours["n"] < 2:
                verdict = f"{'agrees' if direction == claim[key] else 'disagrees'} (one seed, no error bar)"
            elif abs(diff) <= spread:
                verdict = "within the spread over fine-tuning seeds"
            else:
                verdict = "agrees" if direction == claim[key] else "disagrees"
            measured = f"{100 * ours['mean']:.2f}% vs {100 * base['mean']:.2f}% (±{100 * spread:.2f})"
            rows.append(
                {"dataset": family, "comparison": text, "labels": count, "paper": claim[key], "ours": measured}
                | {"verdict": verdict}
            )
    return rows
