"""Does a run's best model underfit or overfit, and how hard does its last loss push on the examples it gets wrong?

    python -m experiments.cpu_scale.fit_check RUN [RUN ...] --out docs/results/fit_check.csv

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
from pathlib import Path

import torch
import torch.nn.functional as F

from epbt_deap.config import load_config
from epbt_deap.execution.measures import accuracy
from epbt_deap.execution.training import TrainingContext, TrainSettings, eval_logits, make_loss, new_model
from epbt_deap.report.tables import write_csv
from epbt_deap.run import load_data
from epbt_deap.rundir.checkpoints import load_checkpoint
from experiments.cpu_scale.tables import markdown

COLUMNS = ["run", "loss", "lr", "train_acc", "val_acc", "test_acc", "grad_wrong_vs_ce", "grad_right_vs_ce"]


def per_example_gradient(loss_fn, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """|dL_i/dlogits_i| for each example i of a batch-mean loss."""
    logits = logits.detach().requires_grad_(True)
    (gradient,) = torch.autograd.grad(loss_fn(logits, labels), logits)
    return gradient.norm(dim=1) * len(labels)


def fit_row(run_dir: Path) -> dict[str, object]:
    """One run's best model: its accuracies and its loss's logit gradient against cross-entropy's."""
    config = load_config(run_dir / "config.yaml")
    splits = load_data(config)
    settings = TrainSettings.from_config(config.train)
    context = TrainingContext.create("cpu", settings, splits)
    best = load_checkpoint(run_dir / "best.pt", map_location="cpu")
    model = new_model(context)
    model.load_state_dict(best["model"])
    labels = splits.train_labels
    logits = eval_logits(context, model, splits.train_images)  # one pass over the training images serves both
    wrong = logits.argmax(dim=1) != labels
    own = per_example_gradient(make_loss(settings, best["genes"], context.device), logits, labels)
    cross_entropy = per_example_gradient(F.cross_entropy, logits, labels)
    row: dict[str, object] = {
        "run": run_dir.name, "loss": settings.loss, "lr": round(best["genes"].get("lr", settings.lr), 4),
        "train_acc": round(1.0 - float(wrong.float().mean()), 4),
        "val_acc": round(accuracy(eval_logits(context, model, splits.val_images), splits.val_labels), 4),
        "test_acc": round(accuracy(eval_logits(context, model, splits.test_images), splits.test_labels), 4),
    }
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
    print(markdown(rows, COLUMNS))
    if args.out:
        write_csv(rows, COLUMNS, args.out)


if __name__ == "__main__":
    main()
