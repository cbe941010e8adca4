"""Run configuration: YAML plus command-line overrides, validated once, before any work.

The defaults are the paper's CIFAR-10 / ResNet-32 setup (population 40, 20 elites,
25 generations of 8 epochs, SGD with momentum 0.9, batch 128, learning rate 0.1
divided by 10 at epochs 100 and 150). ``generations`` counts generation 0, so each
lineage trains ``generations * epochs_per_generation`` epochs (200 in the paper).
"""
from __future__ import annotations

import copy
import datetime
import difflib
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from epbt_deap.catalog import DATASET_SPECS, DATASETS, USER_DATA, class_folders
from epbt_deap.errors import ConfigError
from epbt_deap.evolution import defaults
from epbt_deap.evolution.space import Gene, SearchSpace

TRAINERS = ("per_model", "vectorized")
NOISE_KINDS = ("symmetric", "pairflip")
NoiseKind = Literal[NOISE_KINDS]
LOSSES = ("taylorglo", "cross_entropy", "gce")  # gce: generalised cross-entropy, robust to label noise
PRECISIONS = ("float32", "bfloat16")
BACKENDS = ("local", "ray")
#: The genes that override train.<name>, with the values each may take: (lowest, highest, lowest allowed).
GENE_RANGES = {"lr": (0.0, math.inf, False), "momentum": (0.0, 1.0, True), "weight_decay": (0.0, math.inf, True),
               "label_smoothing": (0.0, 0.5, True)}
TRAINABLE_GENES = tuple(GENE_RANGES)
SEED_LIMIT = 2**32  # numpy's and torch's seeds lie in [0, 2**32)
#: A number as text (YAML 1.1 reads 1e-1, without a dot, as a string).
NUMBER_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


class Section(BaseModel):
    """A config section: unknown keys refused, and each key described by the docstring under it."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True,
                              allow_inf_nan=False)

    @classmethod
    def default(cls, key: str) -> Any:
        """The default of ``key``: the config models hold every default (the EA's from epbt_deap.evolution.defaults),
        the Python API's too."""
        value = cls.model_fields[key].default
        return value.spec() if isinstance(value, OperatorConfig) else copy.deepcopy(value)


class LabelNoiseConfig(Section):
    """Flip a share of the training and validation labels (never the test labels): :mod:`epbt_deap.data.noise`."""

    rate: float = Field(0.0, ge=0, lt=1)
    """share of training labels flipped, exactly round(rate x N), and as many validation labels unless
    clean_validation; in [0, 1)"""
    kind: NoiseKind = "symmetric"
    """symmetric: another class drawn uniformly; pairflip: class c becomes c + 1 mod n"""
    seed: int | None = Field(None, ge=0, lt=SEED_LIMIT)
    """seeds the flips; none: the run's seed, so every method and resume sees the same flips (recorded in
    label_noise.json); test labels never change"""
    clean_validation: bool = False
    """true: validation labels stay clean (by default they are as noisy as the training labels)"""


class DataConfig(Section):
    dataset: str = "cifar10"
    """cifar10, cifar100, svhn (train + extra), mnist, fashion_mnist, kmnist, digits, imagefolder, fake, arrays
    (an .npz file of x_train, y_train, x_test, y_test at data.dir), or an import path, module:loader, to a
    loader of your own (docs/your-own-model-and-data.md)"""
    dir: Path | None = None
    """dataset folder (imagefolder: holds train/ and test/; arrays: the .npz file); none: ~/.cache/epbt-deap/data"""
    download: bool = True
    """download CIFAR-10, CIFAR-100, SVHN, MNIST, Fashion-MNIST or KMNIST when missing (else read their files in
    data.dir: cifar-10-batches-py, cifar-100-python, the .mat files, or <MNIST|FashionMNIST|KMNIST>/raw)"""
    val_size: int | None = Field(None, ge=0)
    """validation images held out of training; none: the dataset's (CIFAR-10: 5,000, SVHN: 30,000); 0: none at all,
    for one model without selection only (evolution.algorithm: none, population 1), validation then recorded as
    null and the best model the latest"""
    train_subset: int | None = Field(None, ge=1)
    """train on this many images only (CPU-scale runs); none: all"""
    test_subset: int | None = Field(None, ge=1)
    """record test accuracy on this many images only (CPU-scale runs: the test pass of every child can cost more than
    its training); none: all"""
    augment: bool | None = None
    """random crop (4-pixel padding) + flip, on the training device; none: the dataset's choice"""
    split_seed: int = Field(0, ge=0, lt=SEED_LIMIT)
    """seeds the validation split and the subsets"""
    label_noise: LabelNoiseConfig = LabelNoiseConfig()

    @field_validator("dataset")
    @classmethod
    def _known_or_import_path(cls, dataset: str) -> str:
        if dataset not in DATASETS and ":" not in dataset:
            raise ValueError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}, or give an import "
                             "path, module:loader")
        return dataset

    def num_classes(self) -> int | None:
        """The dataset's number of classes, known before its images load; None for a missing image folder
        or one of fewer than 2 class folders (loading it says what is wrong), arrays and a loader of your own
        (known once they load)."""
        spec = DATASET_SPECS.get(self.dataset)
        if spec is None or spec.num_classes is not None or self.dataset != "imagefolder":
            return None if spec is None else spec.num_classes
        train = Path(self.dir or ".").expanduser() / "train"
        count = len(class_folders(train)) if train.is_dir() else 0
        return count if count >= 2 else None


class TrainConfig(Section):
    model: str | None = None
    """resnet8, resnet20, resnet32, resnet56, wrn16_8, digits_cnn, mlp (for features), a name given to
    epbt_deap.register_model, or an import path, module:factory, to any factory(num_classes, in_channels,
    **model_args) -> nn.Module (the current folder is searched too); none: the dataset's"""
    model_args: dict[str, Any] = {}
    """keyword arguments of the model's factory"""
    epochs_per_generation: int = Field(8, ge=1)
    """E: epochs each child trains"""
    batch_size: int = Field(128, ge=2)
    """training batch size"""
    eval_batch_size: int = Field(256, ge=1)
    """batch size of the measuring passes"""
    lr: float = Field(0.1, gt=0)
    """SGD's learning rate; an lr gene overrides it"""
    momentum: float = Field(0.9, ge=0, le=1)
    """SGD's momentum; a momentum gene overrides it"""
    weight_decay: float = Field(1e-4, ge=0)
    """SGD's weight decay; a weight_decay gene overrides it"""
    lr_milestones: list[int] = [100, 150]
    """epochs on the run's clock (generation x E) where the learning rate is multiplied by lr_gamma"""
    lr_gamma: float = Field(0.1, gt=0)
    """the step decay's factor"""
    loss: Literal[LOSSES] = "taylorglo"
    """taylorglo; cross_entropy; or gce, generalised cross-entropy (1 - p_true^q) / q (Zhang & Sabuncu 2018), robust
    to label noise (with cross_entropy or gce only evolution.genes evolve)"""
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    """cross-entropy's label smoothing, as torch's (train.loss: cross_entropy only); a label_smoothing gene overrides
    it"""
    gce_q: float = Field(0.7, gt=0, le=1)
    """gce's q in (0, 1]: cross-entropy as q -> 0, MAE at 1"""
    taylorglo_scale: float = Field(1.0, gt=0)
    """multiplies Eq. 1 (its 1/n makes its gradients about 1/3 of cross-entropy's)"""
    trainer: Literal[TRAINERS] = "per_model"
    """per_model, or vectorized: each worker trains its share of the children as one batched computation"""
    precision: Literal[PRECISIONS] = "float32"
    """float32, or bfloat16: forward passes under bfloat16 autocast (weights, optimiser and loss stay float32)"""
    channels_last: bool = False
    """channels-last memory layout (per_model trainer)"""
    compile: bool = False
    """torch.compile the worker's one model, once per worker; each evaluation loads its weights into that model
    (per_model trainer)"""

    @model_validator(mode="after")
    def _check_trainer_options(self) -> TrainConfig:
        if self.label_smoothing and self.loss != "cross_entropy":
            raise ValueError("train.label_smoothing smooths cross-entropy's targets: set train.loss: cross_entropy")
        if self.trainer == "vectorized":
            for option in ("channels_last", "compile"):
                if getattr(self, option):
                    raise ValueError(f"train.{option} works with the per_model trainer, not vectorized")
        return self


class GeneConfig(Section):
    low: float
    """the gene's lower bound"""
    high: float
    """the gene's upper bound"""
    init_low: float | None = None
    """the initial draw's lower bound; none: low"""
    init_high: float | None = None
    """the initial draw's upper bound; none: high"""
    scale: Literal["linear", "log"] = "linear"
    """linear, or log: draws (the first, and resets) are uniform on the logarithm; mutation acts on the value"""


class TaylorGLOConfig(Section):
    low: float = -10.0
    """theta's lower bound"""
    high: float = 10.0
    """theta's upper bound"""
    init_low: float | None = None
    """narrows the initial draw of theta; none: low"""
    init_high: float | None = None
    """narrows the initial draw of theta; none: high"""
    init: Literal[defaults.INITS] = defaults.INIT
    """learnable (the measured default, docs/results.md): redraw initial theta that fail the learnability check;
    uniform: keep them, as the paper does"""


def number_from_text(value: Any) -> Any:
    """``value`` as a float where it is text that YAML left unread, e.g. ``1e-1``; else as it is."""
    return float(value) if isinstance(value, str) and NUMBER_TEXT.fullmatch(value.strip()) else value


class OperatorConfig(BaseModel):
    """An operator name and its keyword arguments, e.g. ``{name: selTournament, tournsize: 2}``."""

    model_config = ConfigDict(extra="allow")
    name: str

    @model_validator(mode="before")
    @classmethod
    def _numbers_from_text(cls, data: Any) -> Any:
        """Arguments such as ``sigma: 1e-1`` or ``factors: [8e-1, 1.2]``, which YAML reads as text, become
        the numbers they are."""
        if not isinstance(data, dict):
            return data
        return {key: [number_from_text(item) for item in value] if isinstance(value, list) else number_from_text(value)
                for key, value in data.items()}

    def spec(self) -> dict[str, Any]:
        return self.model_dump()


PROBABILITY_ARGUMENTS = ("indpb", "reset_prob", "cxpb", "mutpb")


def operator_argument_problem(key: str, value: Any, population: int) -> str | None:
    """What is wrong with a well-known operator argument, if anything."""
    if key in PROBABILITY_ARGUMENTS and not (isinstance(value, (int, float)) and 0 <= value <= 1):
        return "must be a probability in [0, 1]"
    if key == "sigma" and not (isinstance(value, (int, float)) and 0 <= value < math.inf):
        return "must be a finite number >= 0"
    if key == "tournsize" and not (isinstance(value, int) and 1 <= value <= population):
        return f"must be a whole number from 1 to the population size ({population})"
    return None


class EvolutionConfig(Section):
    algorithm: Literal["epbt", "pbt", "none"] = "epbt"
    """epbt, pbt, or none: models trained without selection (Baseline 1)"""
    truncation: float = Field(defaults.TRUNCATION, ge=0, le=0.5)
    """PBT: the fraction copied from the top over the bottom"""
    population: int = Field(40, ge=1)
    """p: individuals per generation"""
    elites: int = Field(20, ge=1)
    """k: the best kept every generation"""
    generations: int = Field(25, ge=1)
    """generation 0 included: each lineage trains generations x E epochs"""
    cxpb: float = Field(defaults.CXPB, ge=0, le=1)
    """probability that a child is crossed"""
    mutpb: float = Field(defaults.MUTPB, ge=0, le=1)
    """probability that a child is mutated"""
    select: OperatorConfig = OperatorConfig(**defaults.SELECT)
    """any selection operator of epbt_deap.evolution.operators or deap.tools, with its arguments"""
    mutate: OperatorConfig = OperatorConfig(**defaults.MUTATE)
    """any mutation operator, with its arguments"""
    mate: OperatorConfig = OperatorConfig(**defaults.MATE)
    """any crossover operator; the partner is another individual (never the parent), left unchanged"""
    partners: Literal[defaults.PARTNER_CHOICES] = defaults.PARTNERS
    """whom children are crossed with: any other member (population), or the other selected parents (parents)"""
    repair_tries: int = Field(defaults.REPAIR_TRIES, ge=0)
    """> 0: a child whose loss fails the learnability check is made again (mutate and mate rerun), then keeps its
    parent's genes"""
    elites_train: bool = defaults.ELITES_TRAIN
    """true (the measured default): elites also train every generation, as copies with their own uid; false:
    Algorithm 1 as printed, elites kept as they are"""
    hall_of_fame: int = Field(1, ge=1)
    """best individuals kept (and their checkpoints)"""
    taylorglo: TaylorGLOConfig = TaylorGLOConfig()
    genes: dict[str, GeneConfig] = {}
    """more genes: lr (bounds above 0), momentum (within [0, 1]), weight_decay (from 0), label_smoothing (within
    [0, 0.5], with cross-entropy), each {low, high, init_low, init_high, scale}"""

    @model_validator(mode="after")
    def _check_sizes_and_operator_arguments(self) -> EvolutionConfig:
        if self.algorithm == "epbt" and self.elites >= self.population:
            raise ValueError(f"elites ({self.elites}) must be smaller than population ({self.population})")
        if self.algorithm == "pbt" and int(self.population * self.truncation) < 1:
            raise ValueError(f"evolution.truncation: PBT copies int(population x truncation) = "
                             f"int({self.population} x {self.truncation:g}) = 0 members a generation, so nothing "
                             "would evolve: raise population or truncation")
        roles = ("select", "mutate", "mate") if self.algorithm == "epbt" else ("mutate",)
        for role in roles:
            for key, value in getattr(self, role).spec().items():
                problem = operator_argument_problem(key, value, self.population)
                if problem:
                    raise ValueError(f"evolution.{role}.{key}: {problem} (got {value!r})")
        return self


class ResourcesConfig(Section):
    device: str = "auto"
    """auto, cpu, cuda (every GPU) or a list such as cuda:0,cuda:1"""
    workers_per_gpu: int = Field(1, ge=1)
    """worker processes (models trained side by side) per GPU"""
    cpu_workers: int = Field(0, ge=0)
    """worker processes on a CPU-only machine; 0 evaluates in the main process"""
    threads_per_worker: int | None = Field(None, ge=1)
    """torch threads of every evaluator alike (main process, local workers, Ray actors); none: torch's default
    in-process, the cores split among CPU workers, 1 per GPU worker or Ray actor; set it for bitwise the same CPU
    run on any worker count or backend"""
    backend: Literal[BACKENDS] = "local"
    """local processes, or ray actors (pip install epbt-deap[ray])"""
    ray_address: str | None = None
    """with Ray: auto or host:port of a cluster; none starts a local Ray"""
    shared_storage: bool = True
    """with Ray: every node sees the run directory (else checkpoints travel as bytes)"""


class Extension(Section):
    """One ``epbt-deap resume --generations`` of a run (or change of its milestones), as config.yaml records it."""

    after_generation: int
    """the last generation completed when the run was extended (-1: none)"""
    generations_before: int
    """evolution.generations before the extension"""
    generations: int
    """evolution.generations after it"""
    lr_milestones_before: list[int]
    """train.lr_milestones before the extension"""
    lr_milestones: list[int]
    """train.lr_milestones after it"""
    time: str
    """when, UTC, ISO 8601"""


class Config(Section):
    name: str = "epbt"
    """run name; the run directory defaults to runs/<name>"""
    seed: int = Field(0, ge=0, lt=SEED_LIMIT)
    """seeds selection, variation, every evaluation (derived per individual) and label noise"""
    replay_of: str | None = None
    """set by epbt-deap replay: the run whose best lineage was replayed"""
    extensions: list[Extension] = []
    """set by epbt-deap resume --generations: each extension, oldest first"""
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    evolution: EvolutionConfig = EvolutionConfig()
    resources: ResourcesConfig = ResourcesConfig()

    @field_validator("name", mode="before")
    @classmethod
    def _name_as_written(cls, name: Any) -> Any:
        """``--set name=2024`` or ``name: 2024-12-07`` read as YAML give a number or a date: use it as text."""
        if isinstance(name, (int, float, datetime.date)) and not isinstance(name, bool):
            return name.isoformat() if isinstance(name, datetime.date) else str(name)
        return name

    @field_validator("name")
    @classmethod
    def _one_folder_name(cls, name: str) -> str:
        if not name.strip() or name in (".", "..") or "/" in name or "\\" in name:
            raise ValueError("must name one folder under runs/ (no path separators; --run-dir sets any path)")
        return name

    @model_validator(mode="after")
    def _resolve_defaults(self) -> Config:
        if self.train.model is None:
            self.train.model = DATASET_SPECS.get(self.data.dataset, USER_DATA).default_model
        for name, gene in self.evolution.genes.items():
            if name not in TRAINABLE_GENES:
                raise ValueError(f"evolution.genes.{name}: training understands only {', '.join(TRAINABLE_GENES)}")
            lowest, highest, closed = GENE_RANGES[name]
            if not ((gene.low >= lowest if closed else gene.low > lowest) and gene.high <= highest):
                raise ValueError(f"evolution.genes.{name}: bounds must lie within {'[' if closed else '('}{lowest}, "
                                 f"{highest}{']' if highest < math.inf else ')'} (got [{gene.low}, {gene.high}])")
        if "label_smoothing" in self.evolution.genes and self.train.loss != "cross_entropy":
            raise ValueError("evolution.genes.label_smoothing smooths cross-entropy's targets: "
                             "set train.loss: cross_entropy")
        if (self.train.trainer == "vectorized" and self.resources.backend == "ray"
                and not self.resources.shared_storage):
            raise ValueError("train.trainer vectorized with Ray needs resources.shared_storage: true")
        space = self.search_space()  # raises for genes with bad bounds
        evolution = self.evolution
        one_model = (evolution.algorithm == "none" and evolution.population == 1) or self.replay_of is not None
        if self.data.val_size == 0 and not one_model:
            raise ValueError("data.val_size: 0 leaves no validation set, which only one model without selection "
                             "can do without (evolution.algorithm none, population 1, or a replay); selection "
                             "ranks models by validation accuracy")
        if self.evolution.algorithm != "none" and not len(space):
            raise ValueError(f"evolution: with train.loss {self.train.loss} there is no theta to evolve; "
                             "add evolution.genes or set evolution.algorithm to none (need at least one gene)")
        return self

    def label_noise(self) -> LabelNoiseConfig | None:
        """The run's label noise with its seed set (by default the run's), or None for clean labels."""
        noise = self.data.label_noise
        if not noise.rate:
            return None
        return noise.model_copy(update={"seed": self.seed if noise.seed is None else noise.seed})

    def search_space(self) -> SearchSpace:
        """The genes this run evolves: TaylorGLO's 8 (unless the loss is cross-entropy) + extras."""
        extra = [
            Gene(name, g.low, g.high, g.low if g.init_low is None else g.init_low,
                 g.high if g.init_high is None else g.init_high, g.scale)
            for name, g in self.evolution.genes.items()
        ]
        if self.train.loss != "taylorglo":
            return SearchSpace(tuple(extra))
        t = self.evolution.taylorglo
        return SearchSpace.taylorglo(t.low, t.high, t.init_low, t.init_high, extra)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def shown_default(value: Any) -> str:
    """A default as YAML writes it inline (``none`` for null), for the reference table and ``--help``."""
    if value is None:
        return "none"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip().removesuffix("...").strip()


def reference_rows(section: type[BaseModel] | None = None, prefix: str = "") -> list[tuple[str, str, str]]:
    """Every config key as (dotted key, default, description), sections expanded, in the models' order."""
    rows = []
    for name, field in (section or Config).model_fields.items():
        key = f"{prefix}{name}"
        nested = field.annotation if isinstance(field.annotation, type) else None
        if nested is not None and issubclass(nested, Section) and nested is not Extension:
            rows += reference_rows(nested, f"{key}.")
        else:
            rows.append((key, shown_default(field.default), " ".join((field.description or "").split())))
    return rows


def describe(key: str) -> str:
    """The description of a dotted config key, on one line."""
    return next(description for name, _, description in reference_rows() if name == key)


def default_of(key: str) -> str:
    """The default of a dotted config key, as the reference table shows it."""
    return next(default for name, default, _ in reference_rows() if name == key)


def reference_table() -> str:
    """The README's configuration table, generated from the models (tests/test_config_reference.py keeps them equal)."""
    lines = ["| key | default | meaning |", "|---|---|---|"]
    lines += [f"| `{key}` | `{default}` | {description} |" for key, default, description in reference_rows()]
    return "\n".join(lines)


def set_dotted(tree: dict[str, Any], dotted_key: str, value: Any, defaults: Mapping[str, Any]) -> None:
    """Set ``tree['a']['b'] = value`` for ``dotted_key`` 'a.b'.

    A section missing from ``tree`` starts as a copy of the same section of ``defaults``,
    so ``evolution.mutate.sigma=0.3`` changes sigma and keeps the default operator.
    """
    *sections, leaf = dotted_key.split(".")
    node, default = tree, defaults
    for section in sections:
        default = default.get(section) if isinstance(default, Mapping) else None
        if section not in node:
            node[section] = copy.deepcopy(default) if isinstance(default, Mapping) else {}
        if not isinstance(node[section], dict):
            raise ConfigError(f"{dotted_key}: '{section}' is a value, not a section")
        node = node[section]
    node[leaf] = value


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse a ``--set key=value`` override; the value is read as YAML (numbers, lists, ...)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. evolution.population=10")
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML") from None


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path``, or a one-line ConfigError."""
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {path}: not a text file (not UTF-8)") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config {path}{where}: not valid YAML") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config {path}: expected a mapping of keys at the top level")
    return loaded


def _known_keys(location: Iterable[Any]) -> list[str]:
    """Field names of the config section at ``location`` (a pydantic error location)."""
    model: Any = Config
    for part in location:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            break
        model = field.annotation
    return list(model.model_fields)


def describe_error(error: ValidationError) -> str:
    """The first validation problem as one line, with a did-you-mean for unknown keys."""
    first = error.errors()[0]
    location = [part for part in first["loc"] if isinstance(part, (str, int))]
    where = ".".join(str(part) for part in location)
    if first["type"] == "extra_forbidden":
        suggestions = difflib.get_close_matches(str(location[-1]), _known_keys(location[:-1]), n=1)
        hint = f"; did you mean '{suggestions[0]}'?" if suggestions else ""
        return f"{where}: unknown key{hint}"
    message = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    shown = "" if isinstance(value, (dict, list)) or first["type"] == "missing" else f" (got {value!r})"
    if not where or message.startswith(f"{where}."):  # the message names its key itself
        return f"{message}{shown}"
    return f"{where}: {message}{shown}"


def build_config(tree: Mapping[str, Any], overrides: Mapping[str, Any] = {}) -> Config:
    """Validate ``tree`` with dotted-key ``overrides`` applied on top."""
    merged = copy.deepcopy(dict(tree))
    defaults = Config.model_construct().model_dump(mode="json")  # unresolved: train.model stays the dataset's
    for key, value in overrides.items():
        set_dotted(merged, key, value, defaults)
    try:
        return Config.model_validate(merged)
    except ValidationError as error:
        raise ConfigError(describe_error(error)) from None


def configs_dir() -> Path:
    """Where the named configs live: inside the installed package, or configs/ in a clone."""
    packaged = Path(__file__).parent / "configs"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "configs"


def named_configs() -> dict[str, Path]:
    """The packaged configs by name (file name without ``.yaml``), sorted."""
    return {path.stem: path for path in sorted(configs_dir().glob("*.yaml"))}


def config_summary(path: Path) -> str:
    """The first sentence of a config file's leading comment block, without the ``#``s ('' without one)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    sentence, stop, _ = " ".join(lines).partition(". ")
    return sentence + "." if stop else sentence


def resolve_config(path: Path) -> Path:
    """``path`` itself, or the packaged config when it is a bare name such as ``quickstart``."""
    path = Path(path)
    if len(path.parts) != 1 or path.suffix:
        return path
    known = named_configs()
    if path.name not in known:
        raise ConfigError(f"no packaged config named {path.name!r}; choose one of {', '.join(known)} "
                          "or give a path to a .yaml file")
    return known[path.name]


def load_config(path: Path | None = None, overrides: Mapping[str, Any] = {}) -> Config:
    """The validated config from a YAML file or packaged config name (or the defaults) plus overrides."""
    return build_config(read_yaml(resolve_config(path)) if path is not None else {}, overrides)
