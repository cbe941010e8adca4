"""The analysis of Eq. 1 behind issue #10, measured on theta drawn uniformly from [-10, 10]^8.

1. How often each learnability condition holds (``epbt_deap.evolution.learnability.check``).
2. How large TaylorGLO's gradients are against cross-entropy's before any training: the
   per-sample norm of dL/dlogits at near-uniform predictions (logits ~ N(0, 0.1^2), as a
   freshly initialised network gives), over all draws and over the learnable ones. This
   is the measurement behind ``train.taylorglo_scale``.

    python -m experiments.cpu_scale.eq1_analysis --draws 100000
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from epbt_deap.evolution.learnability import check, is_learnable
from epbt_deap.execution.taylorglo import stacked_taylorglo_loss


def per_sample_gradient_norms(loss_sum: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The norm of each sample's gradient with respect to its logits, ``logits`` (..., classes)."""
    (gradient,) = torch.autograd.grad(loss_sum, logits)
    return gradient.norm(dim=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=100_000, help="theta draws for the shares")
    parser.add_argument("--gradient-draws", type=int, default=4000, help="theta draws for the gradients")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    verdicts = [check(theta.tolist(), args.classes) for theta in torch.empty(args.draws, 8).uniform_(-10, 10)]
    print(f"shares of {args.draws:,} draws, {args.classes} classes:")
    for condition in ("pushes_right_way", "no_wrong_class_reward", "learnable"):
        print(f"  {condition:<22} {sum(getattr(v, condition) for v in verdicts) / len(verdicts):.1%}")
    thetas = torch.empty(args.gradient_draws, 8).uniform_(-10, 10)
    logits = (0.1 * torch.randn(args.gradient_draws, args.batch, args.classes)).requires_grad_()
    targets = torch.randint(0, args.classes, (args.gradient_draws, args.batch))
    # Summing the per-model batch means and scaling by the batch size gives per-sample gradients.
    taylorglo = per_sample_gradient_norms(stacked_taylorglo_loss(logits, targets, thetas).sum() * args.batch, logits)
    per_draw = taylorglo.mean(dim=1)
    cross_entropy = per_sample_gradient_norms(
        F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum"), logits).mean()
    learnable = torch.tensor([is_learnable(theta.tolist(), args.classes) for theta in thetas])
    print(f"per-sample |dL/dlogits| at near-uniform predictions, {args.classes} classes:")
    print(f"  cross-entropy                        {cross_entropy:.3f}")
    print(f"  TaylorGLO, median over {args.gradient_draws} draws   {per_draw.median():.3f} "
          f"(ratio {per_draw.median() / cross_entropy:.2f})")
    print(f"  TaylorGLO, median over the {int(learnable.sum())} learnable  {per_draw[learnable].median():.3f} "
          f"(ratio {per_draw[learnable].median() / cross_entropy:.2f})")


if __name__ == "__main__":
    main()
