import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from epbt_deap.config import Config, ConfigError, build_config, load_config, parse_assignment, read_yaml
from tests.helpers import PAPER_ALGORITHM, algorithm_options

CONFIGS = sorted(Path(__file__).parent.parent.joinpath("configs").glob("*.yaml"))


def test_the_shipped_configs_are_there():  # an empty list would skip the test below silently
    assert len(CONFIGS) >= 10 and {"quickstart.yaml", "cifar10_resnet32_epbt.yaml"} <= {p.name for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    assert load_config(path).name == path.stem


def test_the_gpu_indicative_runs_share_their_split_and_their_30_epoch_schedule():
    """benchmarks/gpu_indicative/ as docs/results.md declares it: EPBT (8 members, 4 elites) against Baseline 1."""
    folder = Path(__file__).parent.parent / "benchmarks" / "gpu_indicative"
    epbt, baseline = load_config(folder / "epbt.yaml"), load_config(folder / "baseline1.yaml")
    assert epbt.data == baseline.data and epbt.data.val_size == 5000 and epbt.data.train_subset is None
    for config in (epbt, baseline):
        assert config.train.model == "resnet32" and config.train.lr_milestones == [15, 23]
        assert config.train.epochs_per_generation * config.evolution.generations == 30
    assert (epbt.evolution.algorithm, epbt.evolution.population, epbt.evolution.elites) == ("epbt", 8, 4)
    assert (baseline.evolution.algorithm, baseline.train.loss) == ("none", "cross_entropy")


def test_the_paper_config_is_the_default_but_for_the_two_measured_options():
    paper = load_config(Path("configs/cifar10_resnet32_epbt.yaml")).model_dump()
    default = Config().model_dump()
    assert (default["evolution"]["elites_train"], default["evolution"]["taylorglo"]["init"]) == (True, "learnable")
    default["evolution"].update(elites_train=False)  # the measured defaults (docs/results.md), not the paper's
    default["evolution"]["taylorglo"].update(init="uniform")
    for dumped in (paper, default):  # the file spells out what data.py picks for CIFAR-10 by default
        dumped.pop("name")
        dumped["data"].update(val_size=5000, augment=True)
    assert paper == default
    paper = load_config(Path("configs/cifar10_resnet32_epbt.yaml"))
    assert (paper.evolution.population, paper.evolution.elites, paper.evolution.generations) == (40, 20, 25)
    assert paper.train.model == "resnet32" and paper.train.epochs_per_generation == 8


@pytest.mark.parametrize("name", ["cifar10_resnet32_epbt", "cifar10_wrn16_8_epbt", "svhn_resnet32_epbt"])
def test_the_papers_epbt_experiments_pin_the_papers_algorithm(name):
    assert algorithm_options(load_config(Path(f"configs/{name}.yaml"))) == PAPER_ALGORITHM


def test_the_papers_pbt_baseline_draws_its_initial_losses_as_the_paper_does():
    config = load_config(Path("configs/cifar10_resnet32_pbt_taylorglo.yaml"))
    assert (config.evolution.taylorglo.init, config.train.taylorglo_scale) == ("uniform", 1.0)


def test_overrides_reach_nested_keys_and_parse_yaml_values():
    config = build_config({}, dict([parse_assignment("evolution.mutate.sigma=0.5"),
                                    parse_assignment("train.lr_milestones=[3, 4]")]))
    assert config.evolution.mutate.spec()["sigma"] == 0.5
    assert config.train.lr_milestones == [3, 4]


def test_default_model_follows_the_dataset():
    assert build_config({"data": {"dataset": "digits"}}).train.model == "digits_cnn"
    assert build_config({"data": {"dataset": "cifar10"}}).train.model == "resnet32"
    # a train key set on the command line, with no train section in the file, keeps the dataset's model
    assert build_config({"data": {"dataset": "digits"}}, {"train.lr": 0.05}).train.model == "digits_cnn"
    assert build_config({}, {"data.dataset": "fake", "train.epochs_per_generation": 1}).train.model == "resnet8"


def test_extra_genes_join_the_taylorglo_space_and_cross_entropy_drops_theta():
    genes = {"lr": {"low": 0.001, "high": 1.0, "scale": "log"}, "momentum": {"low": 0.5, "high": 0.99}}
    assert build_config({"evolution": {"genes": genes}}).search_space().names[-2:] == ("lr", "momentum")
    space = build_config({"train": {"loss": "cross_entropy"}, "evolution": {"genes": genes}}).search_space()
    assert space.names == ("lr", "momentum")


@pytest.mark.parametrize("tree, message", [
    ({"evolution": {"elites": 40}}, "elites (40) must be smaller than population (40)"),
    ({"trian": {}}, "trian: unknown key; did you mean 'train'?"),
    ({"train": {"epochs_per_generation": 0}}, "train.epochs_per_generation: Input should be greater than or equal to 1"),
    ({"evolution": {"cxpb": 1.5}}, "evolution.cxpb: Input should be less than or equal to 1"),
    ({"evolution": {"taylorglo": {"low": 5, "high": -5}}}, "low (5.0) must be below high (-5.0)"),
    ({"evolution": {"genes": {"dropout": {"low": 0, "high": 1}}}}, "training understands only lr, momentum, weight_decay"),
    ({"train": {"loss": "cross_entropy"}}, "at least one gene"),
    ({"data": {"dataset": "emnist"}}, "data.dataset: unknown dataset 'emnist': choose one of"),
    ({"train": {"trainer": "vectorized", "compile": True}}, "train.compile works with the per_model trainer"),
    ({"train": {"trainer": "vectorized"}, "resources": {"backend": "ray", "shared_storage": False}},
     "vectorized with Ray needs resources.shared_storage: true"),
    ({"train": {"precision": "float16"}}, "train.precision: Input should be 'float32' or 'bfloat16'"),
    ({"evolution": {"select": {"name": "selTournament", "tournsize": 41}}},
     "evolution.select.tournsize: must be a whole number from 1 to the population size (40)"),
    ({"evolution": {"mutate": {"name": "mutMultiplicativeGaussian", "sigma": -0.1}}},
     "evolution.mutate.sigma: must be a finite number >= 0 (got -0.1)"),
    ({"evolution": {"mutate": {"name": "mutMultiplicativeGaussian", "sigma": math.inf}}},
     "evolution.mutate.sigma: must be a finite number >= 0 (got inf)"),
    ({"seed": -1}, "seed: Input should be greater than or equal to 0 (got -1)"),
    ({"seed": 2**32}, "seed: Input should be less than 4294967296"),
    ({"data": {"label_noise": {"rate": 0.4, "seed": -3}}}, "data.label_noise.seed: Input should be greater than"),
    ({"train": {"lr": math.inf}}, "train.lr: Input should be a finite number (got inf)"),
    ({"train": {"taylorglo_scale": math.nan}}, "train.taylorglo_scale: Input should be a finite number"),
    ({"evolution": {"genes": {"lr": {"low": 0.01, "high": math.inf}}}}, "evolution.genes.lr.high: Input should be a "
                                                                        "finite number"),
    ({"evolution": {"algorithm": "pbt", "population": 3}},
     "evolution.truncation: PBT copies int(population x truncation) = int(3 x 0.25) = 0 members a generation"),
    ({"name": "../../elsewhere"}, "name: must name one folder under runs/"),
    ({"evolution": {"mutate": {"name": "mutMultiplicativeGaussian", "reset_prob": 1.5}}},
     "evolution.mutate.reset_prob: must be a probability in [0, 1] (got 1.5)"),
    ({"evolution": {"mate": {"name": "cxUniform", "indpb": "half"}}},
     "evolution.mate.indpb: must be a probability in [0, 1] (got 'half')"),
    ({"evolution": {"genes": {"momentum": {"low": -1, "high": 3}}}},
     "evolution.genes.momentum: bounds must lie within [0.0, 1.0] (got [-1.0, 3.0])"),
    ({"evolution": {"genes": {"lr": {"low": 0, "high": 0.4}}}}, "evolution.genes.lr: bounds must lie within (0.0, inf)"),
    ({"evolution": {"genes": {"weight_decay": {"low": -1e-4, "high": 1e-3}}}},
     "evolution.genes.weight_decay: bounds must lie within [0.0, inf)"),
])
def test_bad_configs_give_one_line_errors(tree, message):
    with pytest.raises(ConfigError) as error:
        build_config(tree)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_run_name_that_yaml_reads_as_a_number_or_a_date_is_the_name_as_written():
    assert load_config(None, dict([parse_assignment("name=2024")])).name == "2024"
    assert load_config(None, dict([parse_assignment("name=2024-12-07")])).name == "2024-12-07"


def test_operator_arguments_in_scientific_notation_are_numbers_though_yaml_reads_them_as_text(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("evolution:\n  mutate: {name: mutMultiplicativeGaussian, sigma: 1e-1}\n")
    assert read_yaml(path)["evolution"]["mutate"]["sigma"] == "1e-1"  # YAML 1.1: no dot, no number
    config = load_config(path, dict([parse_assignment("evolution.mate={name: cxBlend, alpha: 5E-1}")]))
    assert config.evolution.mutate.spec()["sigma"] == 0.1 and config.evolution.mate.spec()["alpha"] == 0.5
    assert build_config({"evolution": {"select": {"name": "selTournament", "tournsize": 2, "fit_attr": "fitness"}}}
                        ).evolution.select.spec()["fit_attr"] == "fitness"  # text stays text


def test_malformed_yaml_files(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("evolution: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml line 2: not valid YAML"):
        load_config(broken)
    checkpoint = tmp_path / "best.pt"  # a binary file given as the config
    checkpoint.write_bytes(b"PK\x03\x04\x80\xff")
    with pytest.raises(ConfigError, match=r"best.pt: not a text file \(not UTF-8\)"):
        load_config(checkpoint)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(listing)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 50), st.floats(allow_nan=True), st.text(max_size=5))
KEYS = st.sampled_from(["name", "seed", "data", "train", "evolution", "resources", "dataset", "population",
                        "elites", "select", "mutate", "genes", "low", "high", "lr", "sigma", "tournsize", "oops"])
TREES = st.recursive(SCALARS, lambda children: st.one_of(st.lists(children, max_size=3),
                                                          st.dictionaries(KEYS, children, max_size=4)), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(tree=st.dictionaries(KEYS, TREES, max_size=4))
def test_random_malformed_configs_give_a_one_line_error_never_a_traceback(tree):
    try:
        build_config(tree)
    except ConfigError as error:
        assert str(error) and "\n" not in str(error)


@settings(max_examples=100, deadline=None)
@given(key=st.sampled_from(["evolution.population", "evolution.elites", "train.lr", "evolution.select.tournsize",
                            "evolution.mutate.sigma", "data.val_size", "evolution.genes.lr"]),
       value=SCALARS)
def test_random_overrides_give_a_one_line_error_never_a_traceback(key, value):
    try:
        build_config({}, {key: value})
    except ConfigError as error:
        assert str(error) and "\n" not in str(error)


def test_numbers_yaml_leaves_as_text_in_an_operators_list_are_numbers():
    config = build_config({}, {"evolution.mutate": yaml.safe_load("{name: mutPerturb, factors: [8e-1, 1.2e0]}")})
    assert config.evolution.mutate.spec()["factors"] == [0.8, 1.2]
