"""The provisioning record: what a lock is loaded with (its key copy and policy).

A real lock receives this over its secure loading channel; the simulator reads
it from a file. It holds the lock key in clear, so it is written with mode 0600
and belongs on the lock side only::

    {"format": "atm-lock-provisioning", "version": 1, "lock": "CX-0001",
     "key_version": 1, "key": "<base64 of 32 bytes>", "policy": {...}}
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from lockctl.errors import InvalidArgument, ProvisioningError
from lockctl.keys import LockKey
from lockctl.policy import LockPolicy

FORMAT = "atm-lock-provisioning"
VERSION = 1


@dataclass(frozen=True)
class Provisioning:
    key: LockKey
    policy: LockPolicy

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "lock": self.key.lock_id,
            "key_version": self.key.version,
            "key": base64.b64encode(self.key.secret).decode("ascii"),
            "policy": self.policy.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Provisioning:
        try:
            data = json.loads(text)
        except ValueError:
            raise ProvisioningError("a provisioning record must be JSON") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ProvisioningError(f"not an {FORMAT} record")
        if data.get("version") != VERSION:
            raise ProvisioningError(f"provisioning version {data.get('version')!r} is unknown")
        try:
            secret = base64.b64decode(data["key"], validate=True)
            key = LockKey(data["lock"], data["key_version"], secret)
            policy = LockPolicy.from_dict(data.get("policy", {}))
        except KeyError as exc:
            raise ProvisioningError(f"provisioning record lacks {exc.args[0]!r}") from None
        except (binascii.Error, TypeError, InvalidArgument) as exc:
            raise ProvisioningError(f"provisioning record: {exc}") from None
        return cls(key, policy)
