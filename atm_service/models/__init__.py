"""SQLModel tables, one module per bounded context.

Importing this package registers every table on ``SQLModel.metadata``, which
the Alembic environment compares against the migrations.
"""

from atm_service.models.base import UTCDateTime
from atm_service.models.cash import CountersSnapshot
from atm_service.models.devices import (
    AtmState,
    AtmStatePublic,
    DeviceEvent,
    DeviceKey,
    DeviceKeyCreate,
    DeviceKeyPublic,
    DeviceNonce,
    DeviceStatus,
    RecordStream,
)
from atm_service.models.fleet import (
    Atm,
    AtmCreate,
    AtmPublic,
    AtmStatus,
    AtmUpdate,
    Cassette,
    CassetteIn,
    CassettePublic,
    EjDialect,
    ServiceContract,
    ServiceContractCreate,
    ServiceContractPublic,
    ServiceContractUpdate,
    Site,
    SiteCreate,
    SitePublic,
    SiteUpdate,
)
from atm_service.models.journals import JournalChunk, JournalFile, JournalPublic
from atm_service.models.users import (
    Role,
    User,
    UserCreate,
    UserPublic,
    UserSession,
    UserUpdate,
)

__all__ = [
    "Atm",
    "AtmCreate",
    "AtmPublic",
    "AtmState",
    "AtmStatePublic",
    "AtmStatus",
    "AtmUpdate",
    "Cassette",
    "CassetteIn",
    "CassettePublic",
    "CountersSnapshot",
    "DeviceEvent",
    "DeviceKey",
    "DeviceKeyCreate",
    "DeviceKeyPublic",
    "DeviceNonce",
    "DeviceStatus",
    "EjDialect",
    "JournalChunk",
    "JournalFile",
    "JournalPublic",
    "RecordStream",
    "Role",
    "ServiceContract",
    "ServiceContractCreate",
    "ServiceContractPublic",
    "ServiceContractUpdate",
    "Site",
    "SiteCreate",
    "SitePublic",
    "SiteUpdate",
    "UTCDateTime",
    "User",
    "UserCreate",
    "UserPublic",
    "UserSession",
    "UserUpdate",
]
