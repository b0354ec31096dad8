"""requirements.lock pins every dependency of pyproject.toml, with hashes.

`make install` installs from the lock with ``pip install --require-hashes``; a
dependency added to pyproject.toml without regenerating the lock (``make lock``) fails
here rather than on a fresh machine.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def read_lock(text: str) -> dict[str, tuple[Version, list[str]]]:
    """Each pinned package with its version and hashes, from pip-compile's format."""
    pins: dict[str, tuple[Version, list[str]]] = {}
    current: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = (Version(match.group(2)), [])
            continue
        hashed = re.match(r"^\s+--hash=(sha256:[0-9a-f]{64})", line)
        if hashed and current is not None:
            pins[current][1].append(hashed.group(1))
            continue
        if line.startswith(" "):
            continue
        raise AssertionError(f"requirements.lock line {number} is not a pin: {line!r}")
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        names.extend(extra)
    return [Requirement(name) for name in names]


def test_read_lock_refuses_what_is_not_a_pin() -> None:
    with pytest.raises(AssertionError, match="line 2"):
        read_lock("fastapi==1.0 \\\n-e .\n")


def test_every_dependency_is_pinned_within_its_range_with_hashes() -> None:
    pins = read_lock((ROOT / "requirements.lock").read_text())
    assert pins, "requirements.lock pins nothing"
    for name, (_version, hashes) in pins.items():
        assert hashes, f"{name} is pinned without a hash"
    for requirement in declared():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is in pyproject.toml but not in the lock"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {name}=={version}, outside {requirement.specifier}"
        )
