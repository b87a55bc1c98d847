"""The lock (requirements.lock) pins every dependency exactly, within pyproject's ranges, and is what is installed.

Why: `make run` / `make test` install from the lock so that a fresh clone next year gets what CI tested;
a dependency added to pyproject.toml but not to the lock would float, and a lock outside pyproject's
ranges would install something the package does not admit.
"""

import importlib.metadata
import os
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _lock() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"requirements.lock: {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        reqs += [Requirement(r) for r in extra]
    return reqs


def test_every_dependency_is_pinned_within_its_range():
    pins = _lock()
    for req in _requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not in requirements.lock (run make lock)"
        assert req.specifier.contains(pins[name], prereleases=True), f"lock {req.name}=={pins[name]} not in {req}"


@pytest.mark.skipif(os.environ.get("EDGETUNE_UNLOCKED") == "1", reason="environment deliberately not from the lock")
def test_installed_versions_are_the_locked_ones():
    for name, version in _lock().items():
        try:
            installed = Version(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional extra that this environment did not install
        assert Version(installed.base_version) == version, f"{name} {installed} installed, {version} locked"
