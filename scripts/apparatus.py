"""The teaching apparatus of every chapter, in one place: learning objectives (after the chapter's opening),
and at its end the key ideas with the key equation, exercises with hidden solutions, and references; and the
setup and plotting cells folded in the HTML book.

`python scripts/apparatus.py` writes these cells into the notebooks in `book/` (replacing the ones it wrote
before, found by their cell tag), so the text is edited here and the notebooks stay in step; a test checks that
every chapter holds exactly what this file gives.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
TAG = "apparatus"  # the cell tag that marks the cells this script owns
PAPER = "[the paper](https://arxiv.org/abs/2111.00899)"
CODE = "[the official code](https://github.com/rdangovs/essl)"

# chapter -> objectives, key ideas (Markdown), exercises [(question, solution)], references (Markdown)
CHAPTERS: dict[str, dict] = {
    "intro": dict(
        objectives=[
            "say in one sentence what E-SSL adds to a self-supervised method, and why",
            "choose the tier a chapter runs at, and say what a result at that tier can and cannot show",
            "find where any number in this book comes from: its result record and that record's provenance",
        ],
        key="""E-SSL {cite}`dangovski2022essl` trains one encoder $f$ on two objectives at once: a self-supervised loss
that makes $f$ **invariant** to the usual augmentations, and a prediction loss that makes it **equivariant**
to a chosen transformation (by default the four rotations, as in {cite}`gidaris2018rotnet`):

$$ \\mathcal{L} = \\mathcal{L}_{\\mathrm{SSL}} + \\lambda\\, \\mathcal{L}_{\\mathrm{E}} . $$

Every number in the book is read from a result record that says how it was made; a claim about the paper is
judged over seeds, with one stated statistic.""",
        exercises=[
            (
                "Run `python -m essl_core train --recipe cifar10-esimclr --tier smoke` and open the record it "
                "writes. Which fields tell you the data, the code version and the hardware?",
                "`dataset` (name and sha256 of the cache), `provenance.git` (commit, and whether the tree was "
                "dirty), `provenance.device_name`, and `config` (the whole recipe, with any `--set` changes "
                "listed under `overrides`).",
            ),
            (
                "Why can a smoke-tier result never confirm or refute the paper?",
                "Two epochs on 640 images train a model barely past its initialisation: differences between "
                "methods are noise. The smoke tier shows that every code path runs; evidence needs the cpu or "
                "full tier and several seeds.",
            ),
            (
                "Rerun the same smoke command with `--set lmbd=0`. Which terms disappear from the record's "
                "curves, and what method have you trained?",
                "The rotation terms `rot` and `rot_acc` are gone: with lambda 0 there is no E-branch, and the "
                "model is plain SimCLR with E-SimCLR's other settings (its learning rate among them).",
            ),
        ],
        references=f"""The method: {PAPER} {{cite}}`dangovski2022essl` and {CODE}. Every work cited in the book is
listed in the [references](references.md).""",
    ),
    "invariance_equivariance": dict(
        objectives=[
            "define invariance and equivariance of a representation to a group of transformations",
            "check both exactly on small examples, and measure them approximately on trained encoders",
            "explain why even a random network is not invariant to rotations",
        ],
        key="""A representation $f$ is **invariant** to a group $G$ acting on images when
$f(T_g x) = f(x)$ for every $g$, and **equivariant** when $f(T_g x) = T'_g f(x)$ for some action $T'$ of
the same group on representations {cite}`cohen2016gcnn`. Invariance is the special case $T'_g = \\mathrm{id}$: it
throws away which $g$ was applied, while an equivariant $f$ keeps it. Two measures on frozen features: the
centred cosine similarity of $f(x)$ and $f(T_g x)$ (1 = invariant), and how well a linear classifier recovers
$g$ from $f(T_g x)$ (chance = non-trivially equivariant information absent).""",
        exercises=[
            (
                "Global average pooling of a feature map is invariant to which of the chapter's transformations, "
                "exactly? Check with the exact-example cell.",
                "To every transformation that only permutes pixels: rotations by multiples of 90°, flips and "
                "the jigsaw's quadrant permutations, since a mean does not depend on the order of its terms. "
                "Not to blur, grayscale or inversion, which change pixel values.",
            ),
            (
                "The predictability of a random network is above chance for rotations. Why is that not a "
                "contradiction of the definition?",
                "A random network is neither invariant nor usefully equivariant by design, but its "
                "convolution kernels have orientations, so rotated inputs give systematically different "
                "features that a linear classifier can separate. Above-chance predictability needs no "
                "training.",
            ),
            (
                "In the measuring cell, change `test_sample(200)` to 2000 images. Which numbers move, and by "
                "about how much?",
                "Both measures are averages over images: with ten times the images their sampling noise "
                "shrinks by about a factor of three; the ordering of the encoders should not change when it "
                "was clear to begin with.",
            ),
            (
                "Which of the chapter's transformations form a group of two elements, and which of four?",
                "Horizontal flip, vertical flip, grayscale and inversion have two elements (identity and the "
                "transformation, which undoes itself for flips and inversion); rotation and blur have four; "
                "the jigsaw has 24 (the permutations of four quadrants).",
            ),
        ],
        references=f"""Group-equivariant networks: {{cite}}`cohen2016gcnn`. The measures follow the spirit of
{PAPER}'s analysis {{cite}}`dangovski2022essl`.""",
    ),
    "essl_method": dict(
        objectives=[
            "write down the E-SSL loss and name each of its parts in the code",
            "explain the three views, the separate low-resolution rotation view and the block layout",
            "define the kNN monitor and the linear probe, the two ways this book scores a representation",
        ],
        key="""One backbone $f$ serves every view (the architecture figure above); the projector $g$ feeds the
SSL loss and the rotation head $h$ predicts the applied rotation:

$$ \\mathcal{L} = \\mathcal{L}_{\\mathrm{SSL}}\\big(g(f(x_1)), g(f(x_2))\\big) + \\lambda\\, \\frac{1}{4B}
\\sum_{i,k} \\mathrm{CE}\\big(h(f(\\mathrm{rot}_k\\, x_{3,i})), k\\big) $$

**kNN monitor** {cite}`wu2018instdisc`: embed the training set with the frozen backbone; for a test image with
normalised feature $z$, take the $k = 200$ training features $z_i$ most similar by cosine $s_i = z^\\top z_i$;
each votes for its class with weight $\\exp(s_i / \\tau)$, $\\tau = 0.1$; the prediction is the class with the
largest total. **Linear probe**: freeze the backbone, train one linear layer on the labelled training set with
the official protocol, report its test accuracy. Neither ever updates the backbone.""",
        exercises=[
            (
                "Train E-SimCLR at the smoke tier with `--set rot_size=32`. What changes in the step, and what "
                "would you expect at a longer tier?",
                "The rotation view is as large as the SSL views, so the E-branch's backbone pass costs four "
                "full-size images per source image instead of four quarter-size ones, about doubling the step. "
                "The paper's choice of a small view is a cost trade-off; whether the larger view helps needs "
                "seeds at the cpu tier.",
            ),
            (
                "With `--set ssl_loss=ntxent`, how many negatives does each anchor have in a batch of B pairs?",
                "2B - 2: every other view in the batch except its own positive. The official cross-view loss "
                "gives B - 1, all from the other view.",
            ),
            (
                "Why does the rotation head read the backbone's features and not the projector's?",
                "The representation that is evaluated (kNN, probe) is the backbone's. Predicting rotations "
                "from it pushes the rotation information into the features that are kept; the projector is "
                "thrown away after pretraining.",
            ),
            (
                "The rotated batch goes through the backbone in its own pass. What would change if it were "
                "concatenated with the SSL views in one pass?",
                "BatchNorm would compute its statistics over the mixed batch, so the SSL views' normalisation "
                "would depend on the rotated copies. The official code runs separate passes; so does "
                "`essl_core`.",
            ),
        ],
        references=f"""The method {{cite}}`dangovski2022essl` and {CODE}; SimCLR {{cite}}`chen2020simclr`; rotation
prediction {{cite}}`gidaris2018rotnet`; the kNN monitor {{cite}}`wu2018instdisc`; the ResNet
backbone {{cite}}`he2016resnet`.""",
    ),
    "transformation_study": dict(
        objectives=[
            "tell apart a transformation used as an invariance (I-SSL) from one predicted by the E-branch (E-SSL)",
            "read the study's three views of the same runs: accuracy, invariance and equivariance",
            "judge a claim of the paper with the book's verdict rule, including 'within noise'",
        ],
        key="""For a transformation group $G$: **I-SSL** adds a random $g$ to the augmentations of both views, so
the SSL loss teaches $f(T_g x) \\approx f(x)$; **E-SSL** keeps the usual augmentations and adds
$\\lambda\\, \\mathrm{CE}\\big(h(f(T_g x)), g\\big)$, so $f$ must keep $g$ recoverable. The paper's study
{cite}`dangovski2022essl` finds that transformations which hurt as invariances (rotations, vertical flips, ...)
help as equivariances.""",
        exercises=[
            (
                "Which variant should make the similarity plot's bar for $g$ rise, and which the predictability bar?",
                "I-SSL pushes similarity up (toward invariance) and predictability toward chance; E-SSL "
                "pushes predictability up, whatever happens to similarity.",
            ),
            (
                "Grayscale as an E-SSL task: why might it be almost trivial to predict from the features?",
                "A grayscale image has equal colour channels, which the first convolution sees directly; "
                "the head can read it off low-level colour statistics without any semantic feature.",
            ),
            (
                "The cpu tier's committed study has three seeds per run. What is the smallest difference from "
                "the baseline that its verdict could call a result, roughly?",
                "Twice the standard error of the difference of means: with three seeds on each side and "
                "seed-to-seed spreads of about a point, that is about 2 x sqrt(1/3 + 1/3), roughly 1.6 points.",
            ),
        ],
        references=f"""The study is Figure 1 of {PAPER} {{cite}}`dangovski2022essl`; the four-fold rotation task is
{{cite}}`gidaris2018rotnet`.""",
    ),
    "cifar10_reproduction": dict(
        objectives=[
            "run SimCLR and E-SimCLR at a chosen tier and read their result records",
            "compare two methods over pretraining seeds with one stated statistic",
            "say what the cpu tier's verdict shows and what it does not show about the paper's claim",
        ],
        key="""The verdict on "E-SimCLR beats SimCLR": with $n_a, n_b$ pretraining seeds, means
$\\bar a, \\bar b$ and sample standard deviations $s_a, s_b$,

$$ \\Delta = \\bar b - \\bar a, \\qquad \\mathrm{s.e.} = \\sqrt{s_a^2/n_a + s_b^2/n_b}, $$

and the difference counts only when $|\\Delta| > 2\\,\\mathrm{s.e.}$ (Welch's standard error); otherwise it is
within noise, and a single seed per side has no error bar at all. Runs are compared only within one tier's
recipe, pipeline and hardware.""",
        exercises=[
            (
                "Train SimCLR at the smoke tier twice with `--set seed=1` and `--set seed=2`. How far apart "
                "are the two kNN accuracies?",
                "Typically a few points at the smoke tier: that spread, not the difference between methods, "
                "is what a single pair of runs mostly measures.",
            ),
            (
                "Why does the comparison leave out a GPU lease's budgeted runs even though they are longer?",
                "They are not matched: each method trained for as many epochs as fitted an equal share of "
                "time (unequal epochs), with one short probe. A fair comparison keeps epochs and protocol "
                "equal and varies only the method.",
            ),
            (
                "The linear probe's ± is over probe runs on one encoder. Why is that not the seed spread the "
                "verdict needs?",
                "It measures the probe's own noise with the representation fixed; the claim is about "
                "pretraining, whose randomness (initialisation, augmentations, order) only a new pretraining "
                "seed samples.",
            ),
        ],
        references=f"""Paper and code: {PAPER} {{cite}}`dangovski2022essl`, {CODE}; SimCLR
{{cite}}`chen2020simclr`; CIFAR-10 {{cite}}`krizhevsky2009cifar`.""",
    ),
    "imagenet": dict(
        objectives=[
            "list what the ImageNet recipes change from CIFAR-10 and why (views, optimiser, heads)",
            "explain why a global InfoNCE needs a gradient-preserving all-gather across processes",
            "estimate what a full run costs from a measured throughput, and say what the estimate assumes",
        ],
        key="""With $R$ processes of $B$ pairs each, SimCLR's logits must span all $2RB$ views: each process
all-gathers the projections (keeping their gradients) so every anchor sees $2RB - 2$ negatives, as one process
with the whole batch would. LARS {cite}`you2017lars` scales each layer's step by its trust ratio
$\\eta\\, \\lVert w \\rVert / \\lVert \\nabla w \\rVert$, which keeps a batch of 4,096 stable; the learning
rate grows linearly with the batch {cite}`goyal2017largebatch`.""",
        exercises=[
            (
                "Run the two-process smoke demonstration with `--set batch_size=64` instead. Does the "
                "equivalence of losses still hold, and why must the batch divide by the number of processes?",
                "Yes: each process gets 32 pairs and the gathered logits are the same as one process's. A "
                "batch that does not divide would give ranks different shares, which DDP cannot average as "
                "one batch.",
            ),
            (
                "Why does the Imagenette replica train at 64 px with a width-32 ResNet-18 instead of the "
                "paper's ResNet-50 at 224 px?",
                "To finish in about an hour per run on two CPU cores while keeping the recipe's structure "
                "(asymmetric views, the small rotation view at the same relative scale, LARS, the heads). "
                "Its results are Imagenette results, not ImageNet's.",
            ),
            (
                "The cost estimate scales one GPU's images/s linearly to 32 GPUs. Name two things that make "
                "the real run slower.",
                "The gradient all-reduce (about 100 MB per step for a ResNet-50) and the input pipeline "
                "(decoding and augmenting every image at the rate each GPU trains, which the benchmark "
                "measures on one GPU); neither is measured at 32 GPUs.",
            ),
        ],
        references=f"""{PAPER} {{cite}}`dangovski2022essl`; BYOL's asymmetric views {{cite}}`grill2020byol`;
SimSiam {{cite}}`chen2021simsiam`; Barlow Twins {{cite}}`zbontar2021barlow`; LARS {{cite}}`you2017lars`;
ImageNet {{cite}}`russakovsky2015imagenet`; Imagenette {{cite}}`howard2019imagenette`.""",
    ),
    "photonics": dict(
        objectives=[
            "state the photonics task: from a unit cell's permittivity image to its density of states",
            "explain why translations and rotations are symmetries of the label but not of the image",
            "read the experiment's tables against the trivial and no-pretraining baselines",
        ],
        key="""The density of states counts the crystal's optical modes per frequency,
$g(\\omega) = \\sum_n \\int_{BZ} \\delta\\big(\\omega - \\omega_n(\\mathbf k)\\big)\\, d\\mathbf k$. Moving or
turning the unit cell leaves the crystal, and so $g$, unchanged, while the image changes: SimCLR can use these
transformations as invariances, E-SimCLR predicts them {cite}`dangovski2022essl`. The score is the relative L1
error of the predicted DOS over its central points, as in {cite}`loh2022sibcl`.""",
        exercises=[
            (
                "Why is a half-cell translation of a periodic crystal not a change of the crystal?",
                "The crystal is the infinite periodic repetition of the cell; where one chooses the cell's "
                "origin does not change the repetition, so every physical quantity, the DOS included, is the "
                "same.",
            ),
            (
                "On gpm cells (a mirror line), a half turn of the continuous cell is the cell mirrored across "
                "its other axis, just as likely a cell. What does that do to the rotation task's lowest "
                "possible loss, and why can the loss on the images still fall below it?",
                "When two rotations give cells that cannot be told apart, the best prediction splits its "
                "probability between them, so the cross-entropy cannot fall below ln 2 (about 0.69). But on "
                "MPB's pixel grid the mirror line runs through a row of pixels while `torch.rot90` turns the "
                "array about its centre, so a half turn moves the line by one pixel; an encoder that sees the "
                "shift tells the turns apart. Turned about the cell's origin (`--set rotation_centre=origin`) "
                "the half turn leaves the line in place, and ln 2 is a floor again.",
            ),
            (
                "Run `python -m essl_core photonics --tier smoke --datasets blob --modes none simclr_ee`. "
                "Which record fields hold the test error selected on validation, and which the official "
                "protocol's?",
                "Each record's summary gives per label count the validation-selected test error (the main "
                "number) and, labelled separately, the official protocol's lowest test error, which selects "
                "on the test set.",
            ),
        ],
        references=f"""{PAPER} {{cite}}`dangovski2022essl` and {CODE} (`photonics/`); the data pipeline of SIB-CL
{{cite}}`loh2022sibcl`; MPB {{cite}}`johnson2001mpb`.""",
    ),
    "benchmark": dict(
        objectives=[
            "explain why per-image random draws matter for contrastive augmentation on a batch",
            "compare two input pipelines by throughput, in one process, on the same model",
            "place a measured throughput against the FLOP ceiling of the hardware (MFU)",
        ],
        key="""Model FLOPs utilisation: with $F$ FLOPs per source image per training step (forward and backward)
and a measured rate of $r$ source images per second on hardware of peak $P$ FLOP/s,

$$ \\mathrm{MFU} = \\frac{r F}{P}, \\qquad r_{\\max} = \\frac{P}{F} . $$

No implementation passes $r_{\\max}$; the distance to it is what a faster input pipeline or kernel can win.""",
        exercises=[
            (
                "Run `python -m essl_core bench --tier smoke --set batch_size=128`. Does the fast path's "
                "advantage grow or shrink with the batch on your machine?",
                "On a CPU both paths spend most of their time in the model, so the ratio changes little; on a "
                "GPU the reference's per-image PIL work stays per image while the model gets cheaper per "
                "image, so a larger batch usually widens the gap.",
            ),
            (
                "Why does a batch transform that draws its random parameters once per batch break "
                "contrastive learning?",
                "All images of the batch get the same crop and colour change, so the views share the "
                "augmentation and the negatives differ from the anchor only in content seen through the same "
                "window; the task loses the variation it is meant to be invariant to.",
            ),
            (
                "The GPU lease's deviations pair trained E-SimCLR with the reference pipeline and fp16 and "
                "with the fast path and bf16, same seed. What would it take to say the fast path changes the "
                "result?",
                "Several seeds of each at equal epochs, and a difference beyond twice its standard error: one "
                "seed per side cannot separate a pipeline effect from seed noise.",
            ),
        ],
        references=f"""SimCLR's augmentations {{cite}}`chen2020simclr`; {CODE} for the reference pipeline.""",
    ),
}


def objectives_cell(items: list[str]) -> nbformat.NotebookNode:
    lines = "\n".join(f"- {item}" for item in items)
    text = f"```{{admonition}} Learning objectives\n:class: note\nAfter this chapter you can\n\n{lines}\n```"
    return _cell(text)


def closing_cells(chapter: dict) -> list[nbformat.NotebookNode]:
    exercises = ["## Exercises", ""]
    for n, (question, solution) in enumerate(chapter["exercises"], 1):
        exercises += [
            f"**{n}.** {question}",
            "",
            "```{admonition} Solution",
            ":class: dropdown",
            solution,
            "```",
            "",
        ]
    return [
        _cell(f"## Key ideas\n\n{chapter['key']}"),
        _cell("\n".join(exercises).rstrip()),
        _cell(f"## References\n\n{chapter['references']}"),
    ]


def _cell(text: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["tags"] = [TAG]
    return cell


def _number(cells: list[nbformat.NotebookNode]) -> None:
    """Stable ids for this file's cells (rewriting a chapter changes nothing when its text did not change)."""
    for n, cell in enumerate(c for c in cells if TAG in c.metadata.get("tags", [])):
        cell.id = f"{TAG}-{n}"


# Folded in the HTML book (a click shows them; Colab shows every cell as it is): the Colab install cell whole,
# the banner's code (its output, the tier and hardware, stays in view), and the code of plotting cells (those
# that end in plt.show() and assert nothing; their figures stay in view).
FOLDED = {'"google.colab" in sys.modules': "hide-cell", "book.banner()": "hide-input"}
PLOT_TAG = "hide-input"


def fold(cell: nbformat.NotebookNode) -> None:
    tags = [t for t in cell.metadata.get("tags", []) if t not in (*FOLDED.values(), PLOT_TAG)]
    if cell.cell_type == "code":
        tags += [tag for mark, tag in FOLDED.items() if mark in cell.source]
        plot = cell.source.rstrip().endswith("plt.show()") and "assert" not in cell.source
        tags += [PLOT_TAG] if plot and PLOT_TAG not in tags else []
    if tags:
        cell.metadata["tags"] = tags
    else:
        cell.metadata.pop("tags", None)


def apparatus(name: str, nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """`nb` with this file's cells for chapter `name`: the objectives after the opening cell, the rest last;
    its setup and plotting cells folded."""
    chapter = CHAPTERS[name]
    for cell in nb.cells:
        fold(cell)
    cells = [c for c in nb.cells if TAG not in c.metadata.get("tags", [])]
    nb.cells = [cells[0], objectives_cell(chapter["objectives"]), *cells[1:], *closing_cells(chapter)]
    _number(nb.cells)
    return nb


def main() -> int:
    for name in CHAPTERS:
        path = REPO / "book" / f"{name}.ipynb"
        nbformat.write(apparatus(name, nbformat.read(path, as_version=4)), path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
