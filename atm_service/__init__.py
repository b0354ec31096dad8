"""Central service of the ATM managed-service field system.

The names below are imported when first used, not with the package: a worker
process of a reconciliation run imports the package (through the command's
entry point, :mod:`atm_service.entry`) and needs none of the application.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atm_service.app import create_app
    from atm_service.config import Settings, get_settings

__all__ = ["Settings", "create_app", "get_settings"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from atm_service.app import create_app

        return create_app
    if name in ("Settings", "get_settings"):
        from atm_service import config

        return getattr(config, name)
    raise AttributeError(f"module 'atm_service' has no attribute {name!r}")
