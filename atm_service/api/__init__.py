"""The REST API under ``/api/v1``."""

from atm_service.api.router import api_router

__all__ = ["api_router"]
