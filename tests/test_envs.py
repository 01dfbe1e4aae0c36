"""Conda envs (envs/*.yaml) follow requirements.txt, the one place versions are pinned.

A rule run with ``--use-conda`` must compute with the same library versions as the
pip-installed stack the tests and the demo use; a version bumped in one place only
would make cluster numbers differ from local ones without any error.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENVS = sorted((ROOT / "envs").glob("*.yaml"))
#: ``name==version`` (the only pin form used: exact versions, nothing open-ended).
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)$")


def _normalized(name: str) -> str:
    """PEP 503 name: ``PyYAML``, ``pyyaml`` and ``py_yaml`` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines: list[str], where: str) -> dict[str, str]:
    """name -> version of ``name==version`` lines; anything else is a test failure."""
    pins: dict[str, str] = {}
    for line in lines:
        match = PIN.match(line.strip())
        assert match, f"{where}: {line!r} is not an exact pin name==version"
        name = _normalized(match.group(1))
        assert name not in pins, f"{where}: {name} is pinned twice"
        pins[name] = match.group(2)
    return pins


def _requirements() -> dict[str, str]:
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return _pins(lines, "requirements.txt")


def _env(path: Path) -> dict:
    env = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(env, dict), f"{path.name} is not a mapping"
    return env


def _pip_section(env: dict, where: str) -> list[str]:
    sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, f"{where} needs exactly one pip: section"
    return sections[0]


def test_there_are_envs():
    assert {p.name for p in ENVS} >= {"data.yaml", "report.yaml", "train.yaml"}


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_parses_and_uses_conda_forge_only(path):
    env = _env(path)
    assert env.get("name", "").startswith("langarith-"), f"{path.name}: name langarith-..."
    assert env.get("channels") == ["conda-forge", "nodefaults"], (
        f"{path.name}: channels must be [conda-forge, nodefaults] (no defaults channel)"
    )
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert any(d.startswith("python=") for d in conda), f"{path.name} pins no python"
    assert any(d.startswith("pip=") for d in conda), f"{path.name} pins no pip"


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_pins_what_requirements_pin(path):
    """Every pip package of the env is pinned exactly, to requirements.txt's version."""
    required = _requirements()
    pins = _pins(_pip_section(_env(path), path.name), path.name)
    unknown = sorted(set(pins) - set(required))
    assert not unknown, f"{path.name} pins {unknown}, which requirements.txt does not list"
    differ = {name: (v, required[name]) for name, v in pins.items() if required[name] != v}
    assert not differ, f"{path.name} pins other versions than requirements.txt: {differ}"


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_python_matches_the_package(path):
    """The env's python satisfies pyproject's requires-python (>=3.11)."""
    conda = [d for d in _env(path)["dependencies"] if isinstance(d, str)]
    version = next(d.split("=", 1)[1] for d in conda if d.startswith("python="))
    major, minor = (int(x) for x in version.split(".")[:2])
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    low = re.search(r'requires-python\s*=\s*">=(\d+)\.(\d+)"', text)
    assert low, "pyproject.toml has no requires-python >=X.Y"
    assert (major, minor) >= (int(low.group(1)), int(low.group(2)))
