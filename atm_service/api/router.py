"""All API routes, mounted under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from atm_service.api.routes import (
    atms,
    cash,
    contracts,
    device_commands,
    device_keys,
    device_signals,
    devices,
    engineers,
    fleet_state,
    journals,
    kpis,
    lock_log,
    locks,
    reconciliation,
    session,
    sites,
    tasks,
    users,
)

api_router = APIRouter(prefix="/api/v1")
# The fleet's agents send nearly every request the service gets: their routes are
# matched first, before the people's (route matching goes down the list).
api_router.include_router(devices.router)
api_router.include_router(session.router)
api_router.include_router(users.router)
api_router.include_router(sites.router)
api_router.include_router(contracts.router)
api_router.include_router(atms.router)
api_router.include_router(fleet_state.router)
api_router.include_router(journals.router)
api_router.include_router(device_keys.router)
api_router.include_router(device_signals.router)
api_router.include_router(device_commands.router)
api_router.include_router(engineers.router)
api_router.include_router(tasks.router)
api_router.include_router(kpis.router)
api_router.include_router(locks.router)
api_router.include_router(lock_log.router)
api_router.include_router(reconciliation.router)
api_router.include_router(cash.router)
