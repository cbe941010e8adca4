"""Throughput of epbt-deap's training against a plain PyTorch loop, on CPU or GPU.

Rows of the table (model-epochs and images per second; only training epochs count):

  (a) a plain PyTorch loop training one model on synthetic CIFAR-10-shaped uint8 data held on
      the device (batch 128, SGD momentum 0.9, cross-entropy, on-device normalise + crop/flip);
  (b) ``epbt_deap.execution.training.evaluate`` through ``epbt_deap.execution.pool.make_pool`` on the same data,
      for several worker counts; the "non-train" column is the share of wall time that the
      same tasks take with 0 epochs (measuring passes over validation, test and training
      images, model build, checkpoint I/O);
  (c) ``epbt_deap.execution.vectorized.evaluate_group``: one worker trains a group of 8, 20, 40 models
      (``--models``) as one batched computation;
  (d) short whole EPBT runs (``epbt_deap.run.run``) against the plain loop for the same
      model-epochs of the same model on the same data: on the synthetic data (written as
      CIFAR-10 python batches) and, when the folder exists, on CIFAR-10 JPEGs (``imagefolder``,
      a training subset), with the paper's train / validation / test proportions.

    .venv/bin/python benchmarks/throughput.py --quick
    .venv/bin/python benchmarks/throughput.py --device cpu --model resnet8 --train-size 5000 --epochs 2
    .venv/bin/python benchmarks/throughput.py --device cuda --model resnet32 --run-trainer vectorized
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import pickle
import platform
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from epbt_deap.config import TRAINERS, build_config
from epbt_deap.data import ImageSplits, normalize, random_crop_flip
from epbt_deap.evolution.space import PARAMETER_NAMES
from epbt_deap.execution.pool import make_pool, resolve_devices
from epbt_deap.execution.protocol import EvalResult, EvalTask
from epbt_deap.execution.taylorglo import taylorglo_loss
from epbt_deap.execution.training import TrainingContext, TrainSettings, evaluate
from epbt_deap.execution.training import measure as measure_model
from epbt_deap.execution.vectorized import evaluate_group
from epbt_deap.models import build_model
from epbt_deap.run import load_data, run
from epbt_deap.rundir.checkpoints import load_checkpoint, save_checkpoint
from epbt_deap.rundir.layout import BEST_FILE

BATCH = 128
GOAL = 1.10  # issue goal on CPU: whole EPBT run <= 1.10 x the plain loop
BENIGN_THETA = dict(zip(PARAMETER_NAMES, [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]))  # loss -y_true / n


@dataclass
class Row:
    """One line of the table."""

    name: str
    workers: str = "-"
    model_epochs: float = math.nan
    images: float = math.nan
    wall: float = math.nan
    non_train: float = math.nan  # share of wall time outside training epochs
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self, width: int = 44) -> str:
        def num(value: float, fmt: str) -> str:
            return "n/a" if math.isnan(value) else format(value, fmt)

        rate = num(self.model_epochs / self.wall, ".3f") if self.model_epochs else "n/a"
        images = num(self.images / self.wall, ",.0f") if self.images else "n/a"
        share = "-" if math.isnan(self.non_train) else f"{100 * self.non_train:.0f}%"
        return (f"{self.name:<{width}} {self.workers:>7} {rate:>11} {images:>9} {num(self.wall, '.1f'):>8} "
                f"{share:>9}  {self.notes}")


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def synthetic_splits(n: int, seed: int = 0) -> ImageSplits:
    """Random uint8 3x32x32 images in 10 classes; val and test sized like CIFAR-10 (n/10, n/5)."""
    g = torch.Generator().manual_seed(seed)
    part = lambda size: (torch.randint(0, 256, (size, 3, 32, 32), generator=g, dtype=torch.uint8),
                         torch.randint(0, 10, (size,), generator=g))
    (xt, yt), (xv, yv), (xs, ys) = part(n), part(max(1, n // 10)), part(max(1, n // 5))
    return ImageSplits(xt, yt, xv, yv, xs, ys, mean=(0.5,) * 3, std=(0.29,) * 3, num_classes=10,
                       augment=True, name="synthetic")


def write_cifar_batches(splits: ImageSplits, root: Path) -> Path:
    """``splits`` (train + val as training images) as CIFAR-10 python batches under ``root``, for ``run()``."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images = torch.cat([splits.train_images, splits.val_images])
    labels = torch.cat([splits.train_labels, splits.val_labels])
    parts = [(f"data_batch_{i + 1}", chunk) for i, chunk in enumerate(torch.arange(len(labels)).chunk(5))]
    for name, (chunk_images, chunk_labels) in [*((name, (images[c], labels[c])) for name, c in parts),
                                               ("test_batch", (splits.test_images, splits.test_labels))]:
        with (folder / name).open("wb") as file:
            pickle.dump({b"data": chunk_images.reshape(len(chunk_labels), -1).numpy(),
                         b"labels": chunk_labels.tolist()}, file)
    return root


def plain_loop(model_name: str, splits: ImageSplits, epochs: int, device: str,
               settings: TrainSettings | None = None, taylorglo: bool = False) -> float:
    """Seconds for a tight loop to train one model ``epochs`` epochs on ``splits``' training set.

    Cross-entropy, or with ``taylorglo`` the TaylorGLO loss with the genes the (b) tasks use.
    """
    lr, momentum, decay = (0.1, 0.9, 1e-4) if settings is None else (settings.lr, settings.momentum,
                                                                      settings.weight_decay)
    images, labels = splits.train_images.to(device), splits.train_labels.to(device)
    mean, std = torch.tensor(splits.mean, device=device), torch.tensor(splits.std, device=device)
    theta = torch.tensor(list(BENIGN_THETA.values()), device=device)
    loss_fn = (lambda logits, y: taylorglo_loss(logits, y, theta)) if taylorglo else F.cross_entropy

    def train(images: torch.Tensor, labels: torch.Tensor, epochs: int) -> float:
        torch.manual_seed(0)
        model = build_model(model_name, splits.num_classes, splits.in_channels).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=decay)
        generator = torch.Generator(device=device).manual_seed(0)
        model.train()
        sync(device)
        start = time.perf_counter()
        for _ in range(epochs):
            for batch in torch.randperm(len(labels), generator=generator, device=device).split(BATCH):
                if len(batch) < 2:
                    continue
                inputs = normalize(images[batch], mean, std)
                if splits.augment:
                    inputs = random_crop_flip(inputs, generator)
                loss = loss_fn(model(inputs), labels[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        sync(device)
        return time.perf_counter() - start

    train(images[:2 * BATCH], labels[:2 * BATCH], 1)  # warm-up
    return train(images, labels, epochs)


def busy_cores(seconds: float = 1.0) -> float:
    """Cores other processes keep busy, sampled from /proc/stat while this one sleeps (nan off Linux)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            ticks = [int(value) for value in stat.readline().split()[1:]]
        return sum(ticks), ticks[3] + ticks[4]  # all, idle + iowait

    try:
        (total0, idle0), _, (total1, idle1) = sample(), time.sleep(seconds), sample()
    except (OSError, ValueError, IndexError):
        return math.nan
    return (1 - (idle1 - idle0) / max(total1 - total0, 1)) * (os.cpu_count() or 1)


def noise_note(times: list[float]) -> str:
    """The separate timings of a measurement, flagged when they disagree (a busy machine)."""
    spread = max(times) / max(min(times), 1e-9) - 1
    return f"runs {' / '.join(f'{t:.1f}' for t in times)} s" + (" NOISY" if spread > 0.2 else "")


def make_tasks(prefix: str, count: int, epochs: int, out: Path, parents: list[str] | None) -> list[EvalTask]:
    return [EvalTask(uid=f"{prefix}{i}", genes=BENIGN_THETA, output_checkpoint=str(out / f"{prefix}{i}.pt"),
                     parent_checkpoint=parents[i % len(parents)] if parents else None,
                     epochs=epochs, start_epoch=0, seed=i) for i in range(count)]


def pool_row(label: str, devices: list[str], settings: TrainSettings, splits: ImageSplits, epochs: int,
             out: Path, group: int = 0) -> Row:
    """A warm-up map, the timed map, then the same with 0 epochs, through ``make_pool``.

    ``group=0``: ``evaluate`` on 2 tasks per worker; else ``evaluate_group`` on one group of that many.
    """
    workers = max(1, len(devices))
    fn, count = (evaluate, 2 * workers) if not group else (evaluate_group, group)

    def run_map(prefix: str, size: int, task_epochs: int, parents: list[str] | None) -> list[EvalResult]:
        tasks = make_tasks(prefix, size, task_epochs, out, parents)
        if not group:
            return pool.map(fn, tasks)
        return [result for results in pool.map(fn, [tasks]) for result in results]

    started = time.perf_counter()
    with make_pool(TrainingContext.create, (settings, splits), devices) as pool:
        warm = run_map("warm", workers if not group else 2, 1, None)
        ready = time.perf_counter()
        start = time.perf_counter()
        results = run_map("timed", count, epochs, [r.checkpoint for r in warm])
        wall = time.perf_counter() - start
        start = time.perf_counter()
        run_map("evalonly", count, 0, [r.checkpoint for r in results])
        wall_zero = time.perf_counter() - start
    bad = [r.status for r in results if r.status != "ok"]
    model_epochs = count * epochs
    train_rate = model_epochs / max(wall - wall_zero, 1e-9)
    notes = (f"{count} tasks; train-only {train_rate:.3f} ep/s; start+warm-up {ready - started:.1f} s"
             + (f"; NOT OK: {bad}" if bad else ""))
    return Row(label, str(workers), model_epochs, model_epochs * len(splits.train_labels), wall,
               wall_zero / wall, notes, {"wall_eval_only": wall_zero, "train_only_model_epochs_per_s": train_rate})


class Clock:
    """A run observer that timestamps generation starts, evaluations and generation ends."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float, Any]] = []

    def generation_started(self, generation: int, evaluations: int) -> None:
        self.events.append(("start", time.perf_counter(), generation))

    def evaluation_finished(self, result: EvalResult) -> None:
        self.events.append(("eval", time.perf_counter(), result))

    def generation_finished(self, row: dict[str, Any]) -> None:
        self.events.append(("end", time.perf_counter(), row))


def eval_overheads(device: str, settings: TrainSettings, splits: ImageSplits, out: Path,
                   weights: Path | None = None, repeats: int = 3) -> tuple[float, float]:
    """Median seconds of one measuring pass (validation, test and training images, of ``weights`` if given)
    and of a checkpoint save + load."""
    context = TrainingContext.create(device, settings, splits)
    model = build_model(settings.model, splits.num_classes, splits.in_channels).to(device)
    if weights is not None and weights.exists():
        model.load_state_dict(load_checkpoint(weights, map_location=device)["model"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    times = []
    for _ in range(repeats + 1):  # the first is the warm-up
        start = time.perf_counter()
        measure_model(context, model)
        middle = time.perf_counter()
        save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, out / "probe.pt")
        build_model(settings.model, splits.num_classes, splits.in_channels).to(device).load_state_dict(
            load_checkpoint(out / "probe.pt", map_location=device)["model"])
        sync(device)
        times.append((middle - start, time.perf_counter() - middle))
    valtest, ckpt = (sorted(column)[len(column) // 2] for column in zip(*times[1:]))
    return valtest, ckpt


def without_nan(value: Any) -> Any:
    """``value`` with NaN floats as None, so that the JSON is strict."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_nan(item) for item in value]
    return value


def whole_run_rows(tag: str, config_tree: dict[str, Any], device: str, out: Path,
                   compare: bool = True) -> tuple[list[Row], dict[str, Any]]:
    """Time ``run()`` (and with ``compare`` the plain loop for the same model-epochs); break its wall time down."""
    config = build_config(config_tree)
    settings = TrainSettings.from_config(config.train)
    splits = load_data(config)
    evo = config.evolution
    trained_per_generation = evo.population if evo.elites_train else evo.population - evo.elites
    model_epochs = (evo.population + (evo.generations - 1) * trained_per_generation) * \
        config.train.epochs_per_generation
    plains = [plain_loop(settings.model, splits, model_epochs, device, settings=settings)] if compare else []
    clock = Clock()
    start = time.perf_counter()
    run(config, out / tag, observer=clock, overwrite=True)
    total = time.perf_counter() - start
    if compare:
        plains.append(plain_loop(settings.model, splits, model_epochs, device, settings=settings))
    plain = sum(plains) / len(plains) if plains else math.nan
    results = [payload for kind, _, payload in clock.events if kind == "eval"]
    assert len(results) * config.train.epochs_per_generation == model_epochs, "unexpected number of evaluations"
    valtest, ckpt = eval_overheads(device, settings, splits, out, weights=out / tag / BEST_FILE)

    # phases: [run start -> gen 0 start] setup; [gen start -> last result] evaluation; [last result -> gen end]
    # hall of fame, statistics and recorder files; [gen end -> next gen start] selection + variation
    phases = dict.fromkeys(("setup", "evaluation", "recording", "select_vary"), 0.0)
    phases["setup"] = clock.events[0][1] - start
    gen_start = last = previous_end = None
    for kind, stamp, _ in clock.events:
        if kind == "start":
            gen_start = stamp
            if previous_end is not None:
                phases["select_vary"] += stamp - previous_end
        elif kind == "eval":
            last = stamp
        else:
            phases["evaluation"] += last - gen_start
            phases["recording"] += stamp - last
            previous_end = stamp
    phases["teardown"] = start + total - previous_end
    resources = config.resources
    pool_size = len(resolve_devices(resources.device, resources.workers_per_gpu, resources.cpu_workers))
    workers = max(1, pool_size)  # 0: evaluated in this process
    in_workers = sum(r.seconds for r in results)
    phases["handoff"] = phases["evaluation"] - in_workers / workers
    phases["val_test_est"] = len(results) * valtest / workers
    phases["ckpt_build_est"] = len(results) * ckpt / workers
    training = in_workers / workers - phases["val_test_est"] - phases["ckpt_build_est"]
    outside = 1 - training / total
    ratio, ratio_train = total / plain, (total - phases["val_test_est"]) / plain
    ratio_core = (total - phases["val_test_est"] - phases["setup"]) / plain
    diverged = sum(r.status != "ok" for r in results)
    what = (f"{splits.name} {len(splits.train_labels)} img {'x'.join(map(str, splits.image_size))}, "
            f"{settings.model}")
    n = len(splits.train_labels)
    rows = [
        Row(f"(d) plain loop: {what}", "-", model_epochs, model_epochs * n, plain,
            notes=f"{model_epochs} epochs of one model, mean of {noise_note(plains)}"),
    ] if compare else []
    rows += [
        Row(f"(d) run(): {splits.name}, pop {evo.population}/{evo.elites} x {evo.generations} gen x "
            f"{config.train.epochs_per_generation} ep", str(pool_size),
            model_epochs, model_epochs * n, total, outside,
            (f"x plain {ratio:.2f} (without val+test {ratio_train:.2f})" if compare else f"{what}")
            + (f"; {diverged} eval(s) diverged" if diverged else "")),
    ]
    detail = {"tag": tag, "evaluations": len(results), "model_epochs": model_epochs, "run_s": total,
              "plain_s": plain, "plain_runs_s": plains, "ratio": ratio, "ratio_without_val_test": ratio_train,
              "ratio_without_val_test_and_setup": ratio_core,
              "outside_training_share": outside, "phases_s": phases, "val_test_per_eval_s": valtest,
              "ckpt_build_per_eval_s": ckpt, "train_images": n, "val_images": len(splits.val_labels),
              "test_images": len(splits.test_labels)}
    return rows, detail


def whole_runs(args: argparse.Namespace, model: str, splits: ImageSplits, device: str, out: Path,
               compare: bool) -> tuple[list[Row], list[dict[str, Any]]]:
    """(d): a short EPBT run on the synthetic data and, when the folder exists, one on CIFAR-10 JPEGs."""
    rows: list[Row] = []
    runs: list[dict[str, Any]] = []
    n = len(splits.train_labels)
    resources = {"device": device, "workers_per_gpu": args.run_workers, "cpu_workers": 0}
    per_model_options = ({"channels_last": args.channels_last, "compile": args.compile}
                         if args.run_trainer == "per_model" else {})
    base = {"seed": 0, "train": {"model": model, "epochs_per_generation": args.run_epochs or args.epochs,
                                 "trainer": args.run_trainer, "precision": args.precision, **per_model_options},
            "evolution": {"algorithm": "epbt", "population": args.run_population,
                          "elites": args.run_population // 2, "generations": 3},
            "resources": resources}
    root = write_cifar_batches(splits, out / "synthetic-cifar")
    tree = {**base, "name": "bench-synthetic", "data": {"dataset": "cifar10", "dir": str(root), "download": False,
                                                        "val_size": len(splits.val_labels)}}
    synthetic_rows, detail = whole_run_rows("synthetic", tree, device, out, compare)
    rows += synthetic_rows
    runs.append(detail)
    jpeg = Path(args.jpeg_dir) if args.jpeg_dir else None
    if args.quick or jpeg is None or not (jpeg / "train").is_dir():
        rows.append(Row("(d) run() on CIFAR-10 JPEGs", notes="skipped (--quick)" if args.quick and jpeg
                        else f"skipped: no image folder at {args.jpeg_dir!r}"))
        return rows, runs
    val = min(5000, max(100, n // 10))  # the paper's proportions: 45,000 / 5,000 / 10,000
    tree = {**base, "name": "bench-jpeg", "data": {"dataset": "imagefolder", "dir": str(jpeg),
                                                   "train_subset": min(n, 50000 - val), "val_size": val,
                                                   "test_subset": args.test_subset or min(10000, n // 5)}}
    jpeg_rows, detail = whole_run_rows("cifar10-jpeg", tree, device, out, compare)
    return rows + jpeg_rows, runs + [detail]


def parse_args() -> argparse.Namespace:
    """The command line's options, checked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--model", default=None, help="default resnet32 (resnet8 with --quick)")
    parser.add_argument("--train-size", type=int, default=None,
                        help="synthetic training images (default 50000 on GPU, 2000 on CPU, 256 with --quick)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per evaluation task in (b) and (c)")
    parser.add_argument("--run-epochs", type=int, default=None,
                        help="epochs per generation in the whole runs (d) (default --epochs)")
    parser.add_argument("--skip-runs", action="store_true", help="leave out the whole runs (d)")
    parser.add_argument("--quick", action="store_true", help="tiny settings, under 2 minutes on 2 CPU cores")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in this process (plain loop, in-process pool, run()); default torch's")
    parser.add_argument("--jpeg-dir", default="/tmp/cifar10-jpeg",
                        help="CIFAR-10 as train/<class>/*.jpg + test/<class>/*.jpg for a whole run ('' skips)")
    parser.add_argument("--test-subset", type=int, default=None,
                        help="the whole JPEG run records test accuracy on this many test images (default train/5)")
    parser.add_argument("--models", type=lambda text: [int(part) for part in text.split(",")], default=None,
                        help="group sizes of the vectorised trainer (default 8,20,40 on GPU, 2,4 on CPU)")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                        help="train.precision of (b), (c) and (d); the plain loop (a) stays float32")
    parser.add_argument("--channels-last", action="store_true", help="train.channels_last for (b) and (d)")
    parser.add_argument("--compile", action="store_true", help="train.compile (torch.compile) for (b) and (d)")
    parser.add_argument("--run-trainer", choices=TRAINERS, default="per_model",
                        help="trainer of the whole runs (d)")
    parser.add_argument("--run-population", type=int, default=4, help="population of the whole runs (d), half elites")
    parser.add_argument("--run-workers", type=int, default=1, help="workers per GPU in the whole runs (d)")
    parser.add_argument("--json", type=Path, default=None, help="also save the figures here")
    args = parser.parse_args()
    if args.epochs < 1 or (args.train_size is not None and args.train_size < 2 * BATCH):
        parser.error(f"--epochs must be >= 1 and --train-size >= {2 * BATCH}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU is available")
    return args


@dataclass(frozen=True)
class Bench:
    """What the options resolve to: the device, model, data and settings that every row family uses."""

    args: argparse.Namespace
    gpu: bool
    device: str
    model: str
    train_size: int
    settings: TrainSettings
    group_sizes: list[int]
    splits: ImageSplits

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Bench:
        gpu = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
        model = args.model or ("resnet8" if args.quick else "resnet32")
        train_size = args.train_size or (256 if args.quick else 50000 if gpu else 2000)
        settings = TrainSettings(model=model, precision=args.precision, channels_last=args.channels_last,
                                 compile=args.compile)
        return cls(args, gpu, "cuda:0" if gpu else "cpu", model, train_size, settings,
                   args.models or ([8, 20, 40] if gpu else [2, 4]), synthetic_splits(train_size))

    @property
    def worker_counts(self) -> list[int]:
        return [1, 2, 4] if self.gpu else [0, 1, 2]

    @property
    def vectorized_settings(self) -> TrainSettings:
        return replace(self.settings, channels_last=False, compile=False)  # per-model options only

    def devices(self, count: int) -> list[str]:
        """The pool devices of ``count`` workers per GPU, or ``count`` CPU workers (0: in-process)."""
        if self.gpu:
            return resolve_devices(self.device, workers_per_gpu=count)
        return resolve_devices("cpu", cpu_workers=count)

    def header(self, busy: float) -> str:
        """The table's title line: machine, torch, load, model, options and data."""
        args, n = self.args, self.train_size
        name = torch.cuda.get_device_name(0) if self.gpu else f"{platform.machine()}, {os.cpu_count()} cores"
        options = f"{args.precision}" + ", channels_last" * args.channels_last + ", compile" * args.compile
        return (f"epbt-deap throughput | {self.device} ({name}), torch {torch.__version__}, "
                f"{torch.get_num_threads()} threads, {busy:.1f} cores busy before | {self.model}, batch {BATCH}, "
                f"{options} | synthetic {n} train / {n // 10} val / {n // 5} test, 3x32x32 uint8 | "
                f"{args.epochs} epoch(s) per task")


def print_progress(rows: Iterable[Row]) -> list[Row]:
    """``rows``, each printed as soon as it is measured."""
    measured = []
    for row in rows:
        print(row.line(56), flush=True)
        measured.append(row)
    return measured


def worker_pool_rows(bench: Bench, out: Path) -> Iterator[Row]:
    """(b): ``evaluate`` through ``make_pool`` for each worker count."""
    for count in bench.worker_counts:
        label = (f"workers_per_gpu={count}" if bench.gpu else
                 f"cpu_workers={count}" + (" (in-process)" if count == 0 else ""))
        yield pool_row(f"(b) evaluate via make_pool, {label}", bench.devices(count), bench.settings, bench.splits,
                       bench.args.epochs, out)


def plain_loop_rows(bench: Bench, plain_before: float) -> list[Row]:
    """(a) the plain loop, timed before (b) (``plain_before``) and again now; (a2) it with the TaylorGLO loss."""
    epochs, n = bench.args.epochs, bench.train_size
    plains = [plain_before, plain_loop(bench.model, bench.splits, epochs, bench.device)]
    wall = plain_loop(bench.model, bench.splits, epochs, bench.device, taylorglo=True)
    return [Row("(a) plain PyTorch loop", "-", epochs, epochs * n, sum(plains) / 2,
                notes=f"one model, mean of {noise_note(plains)}", extra={"runs_s": plains}),
            Row("(a2) plain loop, TaylorGLO loss", "-", epochs, epochs * n, wall,
                notes="the loss (b) trains with; a fixed, benign theta")]


def vectorized_rows(bench: Bench, out: Path) -> Iterator[Row]:
    """(c): one worker trains each group size of models as one batched computation."""
    for size in bench.group_sizes:
        yield pool_row(f"(c) vectorized trainer, {size} models", bench.devices(1 if bench.gpu else 0),
                       bench.vectorized_settings, bench.splits, bench.args.epochs, out, group=size)


def measure(bench: Bench) -> tuple[list[Row], list[dict[str, Any]]]:
    """Every row, in table order, and the breakdowns of the whole runs (d)."""
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="epbt-bench-") as tmp:
        out = Path(tmp)
        # the plain loop runs before and after (b), so that a busy machine shows
        plain_before = plain_loop(bench.model, bench.splits, bench.args.epochs, bench.device)
        pool_rows = print_progress(worker_pool_rows(bench, out))
        rows = plain_loop_rows(bench, plain_before) + pool_rows
        rows += print_progress(vectorized_rows(bench, out))
        if not bench.args.skip_runs:
            run_rows, runs = whole_runs(bench.args, bench.model, bench.splits, bench.device, out,
                                        compare=not bench.gpu)
            rows += run_rows
    return rows, runs


def print_table(header: str, rows: list[Row]) -> None:
    """The header, then every row under column titles, then what 'non-train' means."""
    print()
    print(header)
    width = max(len(row.name) for row in rows)
    print(f"{'row':<{width}} {'workers':>7} {'model-ep/s':>11} {'img/s':>9} {'wall s':>8} {'non-train':>9}  notes")
    for row in rows:
        print(row.line(width))
    print("non-train: (b) share of wall time the same tasks take with 0 epochs (measuring passes, "
          "model build, checkpoint I/O); (d) share of run() wall time outside training (est.)")


def print_run_breakdown(detail: dict[str, Any]) -> None:
    """One whole run's (d) wall time by phase, and how it compares with the goal."""
    p = detail["phases_s"]
    if math.isnan(detail["ratio"]):
        verdict = (f"{detail['model_epochs'] / detail['run_s']:.2f} model-epochs/s; outside training "
                   f"{100 * detail['outside_training_share']:.1f}% (GPU goal < 3%)")
    else:
        verdict = (f"x plain {detail['ratio']:.2f}, without val+test {detail['ratio_without_val_test']:.2f}, "
                   f"without val+test and setup {detail['ratio_without_val_test_and_setup']:.2f} "
                   f"(CPU goal <= {GOAL:.2f}: {'met' if detail['ratio'] <= GOAL else 'NOT met'})")
    print(f"run() {detail['tag']}: {detail['run_s']:.1f} s = setup {p['setup']:.1f} + evaluation "
          f"{p['evaluation']:.1f} (val+test ~{p['val_test_est']:.1f} for {detail['val_images']}+"
          f"{detail['test_images']} img x {detail['evaluations']} evals, build+ckpt ~{p['ckpt_build_est']:.1f}, "
          f"hand-off {p['handoff']:.1f}) + recording {p['recording']:.1f} + select/vary {p['select_vary']:.2f}"
          f" + teardown {p['teardown']:.1f}; {verdict}")


def save_json(path: Path, header: str, bench: Bench, rows: list[Row], runs: list[dict[str, Any]]) -> None:
    """The header, the rows and the run breakdowns as strict JSON."""
    figures = {"header": header, "device": bench.device, "model": bench.model, "train_size": bench.train_size,
               "epochs": bench.args.epochs, "rows": [vars(row) for row in rows], "runs": runs}
    path.write_text(json.dumps(without_nan(figures), indent=2))
    print(f"saved {path}")


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    bench = Bench.from_args(args)
    busy = busy_cores()
    header = bench.header(busy)
    print(header, flush=True)
    if busy > 0.25 and not bench.gpu:
        print("WARNING: other processes are using the CPU; CPU timings will be noisy", flush=True)
    rows, runs = measure(bench)
    print_table(header, rows)
    for detail in runs:
        print_run_breakdown(detail)
    print(f"cores busy with other processes: {busy:.1f} before, {busy_cores():.1f} after")
    if args.json:
        save_json(args.json, header, bench, rows, runs)


if __name__ == "__main__":
    main()
