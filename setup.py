"""Package layout; all other metadata lives in setup.cfg.

The repository keeps ``cli/`` and ``configs/`` at its root, and the wheel installs them
as ``epbt_deap_cli`` (a name of this project's own, not a bare ``cli``) and as the
package data ``epbt_deap/configs/*.yaml``; configs/ stays their single source.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["epbt_deap", "epbt_deap.*"]) + ["epbt_deap_cli", "epbt_deap.configs"],
    package_dir={"epbt_deap_cli": "cli", "epbt_deap.configs": "configs"},
    package_data={"epbt_deap.configs": ["*.yaml"]},
)
