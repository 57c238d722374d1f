"""What the photonics chapter reads from the records: the label sweep and the paper's claims, judged by the
project's one verdict (`essl_core.verdict`)."""

from __future__ import annotations

from pathlib import Path

from ..layout import tier_records
from ..verdict import verdict
from .selection import summary

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


def claim_rows(records: list[dict], claim: dict, protocol: str = "validation") -> list[dict]:
    """Per dataset, at the largest label count: the paper's direction and ours (mean test errors, with the
    standard deviation over fine-tuning seeds)."""
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
