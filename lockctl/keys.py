"""A lock's secret key, with the lock it belongs to and its version.

The vault hands these out decrypted; the service passes them to
:class:`~lockctl.control.LockControl`, a lock's firmware keeps its own copy.
The secret never shows in ``repr`` and keys do not compare with ``==``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lockctl import validation


@dataclass(frozen=True, eq=False)
class LockKey:
    """A 256-bit lock key: ``secret`` for ``lock_id``, key version ``version`` (from 1)."""

    lock_id: str
    version: int
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        validation.lock_id(self.lock_id)
        validation.in_range(self.version, "version", 1, 2**32)
        validation.key_bytes(self.secret, "secret")
