"""The agent knows the service only through HTTP, and the service never imports the agent:
each side has its own implementation of the signature scheme, checked against the same
vector (docs/ingest-api.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {(str(path.relative_to(ROOT)), alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((str(path.relative_to(ROOT)), node.module))
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("device_agent", ("atm_service", "reconciliation", "lockctl", "simulators")),
        ("atm_service", ("device_agent", "simulators")),
    ],
)
def test_import_boundaries(package: str, forbidden: tuple[str, ...]) -> None:
    crossing = sorted(
        (where, module) for where, module in _imports(package) if module.split(".")[0] in forbidden
    )
    assert crossing == []
