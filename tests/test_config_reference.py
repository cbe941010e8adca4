"""The config models are the one home of every default: the README's table and ``evolve --help`` follow them."""
from pathlib import Path

from click.testing import CliRunner

from cli.main import OPTION_KEYS, main
from epbt_deap.config import Config, Section, reference_rows, reference_table, shown_default

README = Path(__file__).resolve().parent.parent / "README.md"


def sections(model=Section):
    return [model, *(nested for subclass in model.__subclasses__() for nested in sections(subclass))]


def test_every_config_key_has_a_description():
    rows = reference_rows()
    assert len(rows) >= 60 and [key for key, _, description in rows if not description] == []
    undescribed = [f"{section.__name__}.{name}" for section in sections()
                   for name, field in section.model_fields.items()
                   if not field.description and not issubclass(type(field.default), Section)]
    assert undescribed == []
    assert ("train.gce_q", "0.7", "gce's q in (0, 1]: cross-entropy as q -> 0, MAE at 1") in rows


def test_the_readme_table_is_the_models_table():
    assert reference_table() in README.read_text(), (
        "README.md's configuration table drifted from the config models; regenerate it with "
        "python -c 'from epbt_deap.config import reference_table; print(reference_table())'")


def test_the_table_shows_the_defaults_a_config_gets():
    config = Config().model_dump(mode="json")
    for key, default, _ in reference_rows():
        value = config
        for part in key.split("."):
            value = value[part]
        if key == "train.model":  # resolved from the dataset when left at none
            continue
        assert shown_default(value) == default, key


def test_evolve_help_gives_each_shorthand_its_keys_description_and_default():
    help_text = " ".join(CliRunner().invoke(main, ["evolve", "--help"]).output.split())
    for key in OPTION_KEYS.values():
        description, default = next((d, v) for k, v, d in reference_rows() if k == key)
        assert f"{description} [{key}, default {default}]" in help_text, key
