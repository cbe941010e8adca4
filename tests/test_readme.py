"""The README's Python examples run as written."""
import re
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


def test_toolbox_example_finds_the_optimum(capsys):
    namespace = {"__name__": "readme"}
    exec(BLOCKS[0], namespace)
    best = namespace["space"].decode(namespace["hall_of_fame"][0])
    assert abs(best["lr"] - 0.01) < 0.005 and abs(best["momentum"] - 0.9) < 0.05
    assert "lr" in capsys.readouterr().out


def test_loss_example_gives_a_scalar():
    namespace = {}
    exec(BLOCKS[1], namespace)
    assert namespace["loss"].shape == ()
