"""Central service of the ATM managed-service field system."""

from atm_service.app import create_app
from atm_service.config import Settings, get_settings

__all__ = ["Settings", "create_app", "get_settings"]
