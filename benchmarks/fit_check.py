"""Does a run's best model underfit or overfit, and how hard does its last loss push on the examples it gets wrong?

    python benchmarks/fit_check.py RUN [RUN ...] --out docs/results/fit_check.csv

For each run directory: the accuracy of best.pt on its own training images (no
augmentation), on validation and on test; then, on the training set's logits, the mean
per-example size of the loss's gradient with respect to the logits, for the examples the
model classifies wrongly and for those it gets right, each as a multiple of cross-entropy's
on the same logits. A polynomial of softmax outputs (TaylorGLO) has a bounded slope in
y_c, so its logit gradient, slope times y_c (1 - y_c), fades on confidently wrong examples,
where cross-entropy's tends to 1; a ratio well under 1 on wrong examples is that effect.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch
import torch.nn.functional as F

from epbt_deap.checkpoints import load_checkpoint
from epbt_deap.config import load_config
from epbt_deap.run import load_data
from epbt_deap.training import TrainingContext, TrainSettings, accuracy, make_loss, new_model

COLUMNS = ["run", "loss", "lr", "train_acc", "val_acc", "test_acc", "grad_wrong_vs_ce", "grad_right_vs_ce"]


def per_example_gradient(loss_fn, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """|dL_i/dlogits_i| for each example i of a batch-mean loss."""
    logits = logits.detach().requires_grad_(True)
    (gradient,) = torch.autograd.grad(loss_fn(logits, labels), logits)
    return gradient.norm(dim=1) * len(labels)


def fit_row(run_dir: Path) -> dict[str, object]:
    config = load_config(run_dir / "config.yaml")
    splits = load_data(config)
    settings = TrainSettings.from_config(config.train)
    context = TrainingContext.create("cpu", settings, splits)
    best = load_checkpoint(run_dir / "best.pt", map_location="cpu")
    model = new_model(context)
    model.load_state_dict(best["model"])
    images, labels = splits.train_images, splits.train_labels
    row: dict[str, object] = {"run": run_dir.name, "loss": settings.loss, "lr": round(best["genes"].get("lr", settings.lr), 4)}
    for name, (x, y) in {"train_acc": (images, labels), "val_acc": (splits.val_images, splits.val_labels),
                         "test_acc": (splits.test_images, splits.test_labels)}.items():
        row[name] = round(accuracy(context, model, x, y), 4)
    with torch.no_grad():
        logits = torch.cat([model(context.prepare(images[i:i + 500])) for i in range(0, len(labels), 500)])
    own = per_example_gradient(make_loss(settings, best["genes"], context.device), logits, labels)
    cross_entropy = per_example_gradient(F.cross_entropy, logits, labels)
    wrong = logits.argmax(dim=1) != labels
    for name, part in (("grad_wrong_vs_ce", wrong), ("grad_right_vs_ce", ~wrong)):
        row[name] = round(float(own[part].mean() / cross_entropy[part].mean()), 3) if part.any() else ""
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories holding best.pt")
    parser.add_argument("--out", type=Path, help="write the rows as CSV here too")
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = [fit_row(run_dir) for run_dir in args.runs]
    print("| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(str(row[column]) for column in COLUMNS) + " |")
    if args.out:
        with open(args.out, "w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
