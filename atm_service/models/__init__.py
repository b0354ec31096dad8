"""SQLModel tables, one module per bounded context.

Importing this package registers every table on ``SQLModel.metadata``, which
the Alembic environment compares against the migrations.
"""

from atm_service.models.base import UTCDateTime
from atm_service.models.cash import CountersSnapshot
from atm_service.models.condition import AtmCondition, AtmOutage
from atm_service.models.device_commands import CommandState, DeviceCommand, DeviceCommandName
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
from atm_service.models.engineers import (
    Engineer,
    EngineerCreate,
    EngineerPublic,
    EngineerUpdate,
    Skill,
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
from atm_service.models.notifications import Audience, DispatchNotification
from atm_service.models.tasks import (
    ReplenishmentCount,
    ResolutionCode,
    Task,
    TaskEvent,
    TaskKind,
    TaskState,
    UnitKind,
)
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
    "AtmCondition",
    "AtmCreate",
    "AtmOutage",
    "AtmPublic",
    "AtmState",
    "AtmStatePublic",
    "AtmStatus",
    "AtmUpdate",
    "Audience",
    "Cassette",
    "CassetteIn",
    "CassettePublic",
    "CommandState",
    "CountersSnapshot",
    "DeviceCommand",
    "DeviceCommandName",
    "DeviceEvent",
    "DeviceKey",
    "DeviceKeyCreate",
    "DeviceKeyPublic",
    "DeviceNonce",
    "DeviceStatus",
    "DispatchNotification",
    "EjDialect",
    "Engineer",
    "EngineerCreate",
    "EngineerPublic",
    "EngineerUpdate",
    "JournalChunk",
    "JournalFile",
    "JournalPublic",
    "RecordStream",
    "ReplenishmentCount",
    "ResolutionCode",
    "Role",
    "ServiceContract",
    "ServiceContractCreate",
    "ServiceContractPublic",
    "ServiceContractUpdate",
    "Site",
    "SiteCreate",
    "SitePublic",
    "SiteUpdate",
    "Skill",
    "Task",
    "TaskEvent",
    "TaskKind",
    "TaskState",
    "UTCDateTime",
    "UnitKind",
    "User",
    "UserCreate",
    "UserPublic",
    "UserSession",
    "UserUpdate",
]
