"""The photonics experiment's two training loops, as the official code: SSL pretraining (NT-Xent on the
projector, the E-branch on the raw batch's transformed copies, SGD with a per-step cosine over one epoch more
than is run, unshuffled batches) and fine-tuning on the DOS minus the empty lattice (Adam, the mode's
symmetry augmentations)."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..augment import epoch_seed
from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import EsslError
from ..layout import PRETRAIN_CHECKPOINT
from ..losses import nt_xent
from ..schedule import cosine_lr
from .config import Mode, PhotonicsRecipe
from .dataset import PhcData, eldiff_baseline, relative_error
from .models import DosNet, PhcEncoder, projector, transformation_classifier
from .symmetry import random_symmetry


def pretrain(
    mode: Mode,
    recipe: PhotonicsRecipe,
    unlabelled: torch.Tensor,
    run_dir: Path,
    device: torch.device,
    progress: bool = True,
) -> dict:
    """SSL pretraining with a checkpoint after every epoch (resumed exactly). Returns the encoder states after
    half and all of the epochs, the loss curve and the wall time."""
    r, seed = recipe, recipe.pretrain_seed
    torch.manual_seed(seed)
    encoder, head = PhcEncoder(r.width).to(device), projector(r.shared_head_norm).to(device)
    classifier = None
    if mode.equivariance:
        classifier = transformation_classifier(mode.equivariance.size, r.shared_head_norm).to(device)
    modules = torch.nn.ModuleList([m for m in (encoder, head, classifier) if m is not None])
    opt = torch.optim.SGD(modules.parameters(), lr=r.pretrain_lr, momentum=0.9, weight_decay=0.0)
    x_all = unlabelled.to(device)
    steps = len(x_all) // r.batch_ssl  # drop_last, and no shuffling: the same batches every epoch
    if steps == 0:
        raise EsslError(f"{len(x_all)} unlabelled cells are fewer than one batch of {r.batch_ssl}")
    total = (r.pretrain_epochs + 1) * steps  # the official schedule spans one more epoch than is kept
    checkpoints = (r.pretrain_epochs // 2, r.pretrain_epochs)
    path = run_dir / PRETRAIN_CHECKPOINT
    state = {"epoch": 0, "curve": [], "encoders": {}, "seconds": 0.0}
    if path.exists():
        saved = load_checkpoint(path, r)
        modules.load_state_dict(saved["modules"])
        opt.load_state_dict(saved["optimizer"])
        state = {k: saved[k] for k in state}
    epochs = range(state["epoch"], r.pretrain_epochs)
    bar = tqdm(epochs, desc="pretrain", leave=False, file=sys.stderr, disable=None if progress else True)
    for epoch in bar:
        start = time.perf_counter()
        modules.train()
        gen = torch.Generator(device).manual_seed(epoch_seed(seed, epoch))
        losses = torch.zeros(2, device=device)
        for i in range(steps):
            for group in opt.param_groups:
                group["lr"] = cosine_lr(epoch * steps + i, total, r.pretrain_lr)
            x = x_all[i * r.batch_ssl : (i + 1) * r.batch_ssl]
            z1 = head(encoder(random_symmetry(x, mode.augmentations, gen)))
            z2 = head(encoder(random_symmetry(x, mode.augmentations, gen)))
            loss = nt_xent(z1, z2, r.temperature)
            ee = torch.zeros((), device=device)
            if classifier is not None:  # the raw batch, all copies in block layout
                copies, labels = mode.equivariance.orbit(x)
                ee = F.cross_entropy(classifier(encoder(copies)), labels)
            opt.zero_grad(set_to_none=True)
            (loss + r.lmbd * ee).backward()
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
        save_checkpoint(path, r, **state, modules=modules.state_dict(), optimizer=opt.state_dict())
        bar.set_postfix(loss=f"{cl:.3f}", ee=f"{ee_loss:.3f}")
    return state


def trivial_error(data: PhcData) -> float:
    """The error of predicting nothing: a network output of 0 leaves the empty lattice 2 pi w as the DOS. A
    method is worth its training only below this line."""
    baseline = eldiff_baseline()
    return float(relative_error(baseline.expand(len(data.dos), -1), data.dos).mean())


def errors(model: DosNet, data: PhcData, baseline: torch.Tensor, device: torch.device) -> float:
    """Mean relative error of (model + EL) against the DOS on points 100..399, in eval mode."""
    model.eval()
    with torch.no_grad():
        preds = torch.cat([model(x.to(device)) for x in data.x.split(1024)]) + baseline
    return float(relative_error(preds, data.dos.to(device)).mean())


def finetune(
    encoder_state: dict | None,
    mode: Mode,
    recipe: PhotonicsRecipe,
    train: PhcData,
    val: PhcData,
    test: PhcData,
    seed: int,
    device: torch.device,
) -> dict:
    """Fine-tune encoder + DOS head; validation and test error before the first epoch, before every epoch at
    least `finetune_eval_steps` steps after the last evaluation (every epoch at 0), and after the last."""
    r, epochs = recipe, recipe.finetune_epochs_for(len(train))
    torch.manual_seed(seed)
    model = DosNet(r.width).to(device)
    if encoder_state is not None:
        model.encoder.load_state_dict(encoder_state)
    opt = torch.optim.Adam(model.parameters(), lr=r.finetune_lr, weight_decay=r.finetune_wd)
    baseline = eldiff_baseline().to(device)
    x, target = train.x.to(device), train.dos.to(device) - baseline
    gen = torch.Generator(device).manual_seed(seed)
    curve = {"epoch": [], "val": [], "test": []}
    unevaluated = 0  # steps since the last evaluation
    for epoch in range(epochs + 1):
        if epoch in (0, epochs) or unevaluated >= r.finetune_eval_steps:
            curve["epoch"].append(epoch)
            curve["val"].append(errors(model, val, baseline, device))
            curve["test"].append(errors(model, test, baseline, device))
            unevaluated = 0
        if epoch == epochs:
            break
        model.train()
        order = torch.randperm(len(x), generator=gen, device=device)
        for batch in order.split(r.finetune_batch):
            loss = F.mse_loss(model(random_symmetry(x[batch], mode.augmentations, gen)), target[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            unevaluated += 1
    return curve
