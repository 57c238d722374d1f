"""What the photonics chapter reads from the records: the label sweep and the paper's claims, judged by the
project's one verdict (`essl_core.verdict`)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np

from ..layout import tier_records
from ..verdict import difference, mean_sd, verdict
from .selection import summary, validation_choice

COMPARISONS = {
    "simclr_ee_vs_simclr": ("simclr_ee", "E-SimCLR vs SimCLR"),
    "simclr_trans_vs_simclr": ("simclr_trans", "SimCLR + transformation vs SimCLR"),
}


def photonics_records(directory: str | Path, tier: str) -> list[dict]:
    """The experiment's records of one tier in `directory`."""
    return tier_records(directory, "photonics", tier)


TRIVIAL = "trivial"  # the series of the error of predicting nothing (the empty lattice), beside the methods


def sweep(records: list[dict], protocol: str = "validation") -> dict[str, dict[str, dict[int, dict]]]:
    """family -> mode -> label count -> {mean, std, n, values} of the test error under one selection protocol,
    recomputed from the per-seed results and pooled over the records of a method (one per pretraining seed), so
    the spread covers pretraining and fine-tuning seeds; and, where the records carry it, the series TRIVIAL:
    the test error of predicting nothing, at every label count (no seeds: n 0, std 0)."""
    pooled: dict[tuple[str, str], dict[str, dict]] = {}  # over pretraining seeds: "PSEED-FSEED" -> result
    out: dict[str, dict[str, dict[int, dict]]] = {}
    for r in records:
        c = r["config"]
        pretrain_seed = c.get("recipe", {}).get("pretrain_seed", 1)
        runs = pooled.setdefault((c["family"], c["mode"]), {})
        for count, by_seed in r["results"].items():
            runs.setdefault(count, {}).update({f"{pretrain_seed}-{s}": v for s, v in by_seed.items()})
        if "trivial" in r:
            line = {"mean": r["trivial"]["test"], "std": 0.0, "n": 0, "values": [r["trivial"]["test"]]}
            out.setdefault(c["family"], {})[TRIVIAL] = {int(n): line for n in r["results"]}
    for (family, mode), results in pooled.items():
        out.setdefault(family, {})[mode] = {int(n): v[protocol] for n, v in summary(results).items()}
    return out


def _listed(items: list) -> str:
    words = [f"{v:,}" for v in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _first_entry(record: dict, count: int) -> dict:
    return next(iter(record["results"][str(count)].values()))


def _finetune_budget(record: dict, counts: list[int]) -> str:
    """How long each label count was fine-tuned: steps where the record names its batch, else epochs (older
    records), read from the validation curves (sparse curves name their epochs)."""
    epochs = []
    for n in counts:
        curve = next(iter(_first_entry(record, n)["curves"].values()))
        epochs.append(curve["epoch"][-1] if "epoch" in curve else len(curve["val"]) - 1)
    batch = record["config"].get("recipe", {}).get("finetune_batch")
    length, unit = (
        ([e * math.ceil(n / batch) for e, n in zip(epochs, counts, strict=True)], "steps")
        if batch
        else (epochs, "epochs")
    )
    if len(set(length)) == 1:
        return f"{length[0]:,} fine-tuning {unit} at every label count"
    return f"{_listed(length)} fine-tuning {unit} at {_listed(counts)} labels"


# What older records lack, and how to tell.
PREDATES = {
    "the trivial baseline": lambda r: "trivial" in r,
    "the official data and heads (their images averaged 4x4 points per pixel, MPB 3x3; their DOS integrated GGR "
    "per bin; each head layer had its own BatchNorm)": lambda r: "ggr_sampling" in r["config"].get("recipe", {}),
}


def settings_lines(records: list[dict]) -> dict[str, str]:
    """family -> one sentence read from its records: seeds, label counts, fine-tuning length, encoders fine-tuned,
    commits, and what the records predate; so that datasets committed at different settings say so."""
    lines = {}
    for family in sorted({r["config"]["family"] for r in records}):
        runs = [r for r in records if r["config"]["family"] == family]
        pretrainings = Counter(r["config"]["mode"] for r in runs if r["config"]["mode"] != "none")  # per method
        counts = sorted(int(n) for n in runs[0]["results"])
        fine_seeds = len(runs[0]["results"][str(counts[0])])
        encoders = max(len(_first_entry(r, counts[0])["curves"]) for r in runs)
        commits = ", ".join(sorted({r["provenance"]["git"]["commit"][:7] for r in runs}))
        predates = [text for text, has in PREDATES.items() if not all(has(r) for r in runs)]
        lines[family] = (
            f"{family}: {max(pretrainings.values(), default=0)} pretraining x {fine_seeds} fine-tuning seeds per "
            f"pretrained method; {_listed(counts)} labels; {_finetune_budget(runs[0], counts)}; "
            f"{'both kept encoders' if encoders > 1 else 'the last encoder'} fine-tuned; commit {commits}."
            + (f" These records predate {' and '.join(predates)}; a rerun of their tier adds them." if predates else "")
        )
    return lines


def convergence_rows(records: list[dict], fraction: float = 0.75) -> list[dict]:
    """Was fine-tuning long enough? Per dataset and label count, over every run of every method: the mean
    validation-selected test error had the runs stopped at `fraction` of their length and at their end, and how
    many runs still found their lowest validation error after that point."""
    runs: dict[tuple[str, int], list[tuple[float, float, bool]]] = {}
    for r in records:
        for count, by_seed in r["results"].items():
            for entry in by_seed.values():
                early_val, early = validation_choice(entry["curves"], fraction)
                val, end = validation_choice(entry["curves"])
                runs.setdefault((r["config"]["family"], int(count)), []).append((early, end, val < early_val))
    percent = round(100 * fraction)
    return [
        {
            "dataset": family,
            "labels": count,
            f"stopped at {percent}% of fine-tuning (%)": 100 * float(np.mean([early for early, _, _ in found])),
            "at the end (%)": 100 * float(np.mean([end for _, end, _ in found])),
            f"runs still improving after {percent}%": f"{sum(late for *_, late in found)} of {len(found)}",
        }
        for (family, count), found in sorted(runs.items())
    ]


def claim_rows(records: list[dict], claim: dict, protocol: str = "validation") -> list[dict]:
    """Per dataset, at the largest label count: the paper's direction and ours (mean test errors, with the larger
    of the two standard deviations over every run: pretraining x fine-tuning seeds)."""
    rows = []
    for family, modes in sweep(records, protocol).items():
        for key, (mode, text) in COMPARISONS.items():
            if mode not in modes or "simclr" not in modes:
                continue
            count = max(set(modes[mode]) & set(modes["simclr"]))
            ours, base = modes[mode][count], modes["simclr"][count]
            spread = max(ours["std"], base["std"])
            measured = f"{100 * ours['mean']:.2f}% vs {100 * base['mean']:.2f}% (±{100 * spread:.2f})"
            paper_sign = -1 if claim[key] == "lower error" else 1
            rows.append(
                {"dataset": family, "comparison": text, "labels": count, "paper": claim[key], "ours": measured}
                | {"verdict": verdict(ours["values"], base["values"], paper_sign)}
            )
    return rows


def variant_rows(
    records: list[dict], variants: list[dict], family: str, claim: str, names: tuple[str, str]
) -> list[dict]:
    """E-SimCLR at another setting (`variants`, e.g. run with `rotation_centre=origin`) beside SimCLR and E-SimCLR as
    `records` ran them, per label count: test errors (%) as mean ± sd over every run, the verdict on the paper's
    `claim` (E-SimCLR vs SimCLR) at both settings, and the second's difference from the first ± its standard error.
    `names`: the two settings' column names."""
    base, other = sweep(records)[family], sweep(variants)[family]["simclr_ee"]
    sign = -1 if claim == "lower error" else 1

    def percent(point: dict) -> list[float]:
        return [100 * v for v in point["values"]]

    rows = []
    for n in sorted(other):
        simclr, first, second = (percent(p[n]) for p in (base["simclr"], base["simclr_ee"], other))
        d = difference(second, first)
        spread = f" ± {d['se']:.2f}" if d["se"] is not None else ""
        rows.append(
            {"labels": n, "SimCLR (%)": mean_sd(simclr), f"{names[0]} (%)": mean_sd(first)}
            | {f"{names[1]} (%)": mean_sd(second), f"{names[0]} vs SimCLR": verdict(first, simclr, sign)}
            | {f"{names[1]} vs SimCLR": verdict(second, simclr, sign)}
            | {f"{names[1]} minus {names[0]} (points)": f"{d['diff']:+.2f}{spread}"}
        )
    return rows
