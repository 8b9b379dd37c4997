"""pyproject.toml and environment.yml list the same runtime dependencies; the README's contract."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent
# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"python-kubernetes": "kubernetes"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[;]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in py["dependencies"]}
    dev = {_name(r) for r in py["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {CONDA_TO_PYPI.get(_name(d), _name(d)) for d in env["dependencies"] if isinstance(d, str)}
    conda -= {"python", "bcc", "pip"}  # bcc: from the distribution or conda-forge, never PyPI
    pip_extra = {_name(d) for d in next((d["pip"] for d in env["dependencies"] if isinstance(d, dict)), [])}
    assert runtime <= conda | pip_extra, f"missing in environment.yml: {runtime - conda - pip_extra}"
    assert (conda | pip_extra) - runtime <= dev, f"environment.yml has extras: {(conda | pip_extra) - runtime - dev}"
    assert "bcc" not in runtime | dev  # the PyPI "bcc" is an unrelated package


def test_readme_and_ci_use_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
