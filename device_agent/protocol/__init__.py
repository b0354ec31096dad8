"""The device link protocol: a pure codec shared by the agent and the device simulators.

No I/O and no clock: bytes and ``now`` go in, bytes and messages come out.

- :mod:`.cobs` and :mod:`.framing`: COBS framing on 0x00, the 8-byte header, CRC-32.
- :mod:`.messages`: every message type and its payload layout;
  :mod:`.cash_units` (XFS cash units) and :mod:`.records` (JSON status, events, results).
- :mod:`.window`: the selective-repeat sliding window with retransmission timers.
- :mod:`.connection`: one end of the link: hello/resync, sessions, keepalive, priorities.
- :mod:`.errors`: the one exception hierarchy.

The byte-by-byte specification, with test vectors, is ``docs/protocol.md``.
"""

from device_agent.protocol.connection import (
    Connection,
    Item,
    LinkConfig,
    LinkStats,
    PeerInfo,
    Priority,
    Received,
    Role,
    SessionEnded,
    SessionStarted,
    Undecodable,
)
from device_agent.protocol.errors import (
    ChecksumError,
    CobsError,
    CommandTimeout,
    DecodeError,
    EncodeError,
    FrameError,
    InvalidArgument,
    LinkError,
    LinkReset,
    NotConnected,
    PayloadError,
    PortError,
    ProtocolError,
    UnknownMessageType,
    UnsupportedVersion,
)
from device_agent.protocol.framing import (
    Frame,
    FrameReader,
    decode_frame,
    encode_frame,
    frame_from_wire,
    frame_to_wire,
)
from device_agent.protocol.messages import (
    Ack,
    CashUnits,
    Command,
    CommandResult,
    Event,
    Hello,
    JournalData,
    JournalError,
    JournalErrorCode,
    JournalInfo,
    JournalRead,
    Message,
    MessageType,
    Query,
    Status,
    decode_message,
    encode_message,
)
from device_agent.protocol.records import COMMANDS

__all__ = [
    "COMMANDS",
    "Ack",
    "CashUnits",
    "ChecksumError",
    "CobsError",
    "Command",
    "CommandResult",
    "CommandTimeout",
    "Connection",
    "DecodeError",
    "EncodeError",
    "Event",
    "Frame",
    "FrameError",
    "FrameReader",
    "Hello",
    "InvalidArgument",
    "Item",
    "JournalData",
    "JournalError",
    "JournalErrorCode",
    "JournalInfo",
    "JournalRead",
    "LinkConfig",
    "LinkError",
    "LinkReset",
    "LinkStats",
    "Message",
    "MessageType",
    "NotConnected",
    "PayloadError",
    "PeerInfo",
    "PortError",
    "Priority",
    "ProtocolError",
    "Query",
    "Received",
    "Role",
    "SessionEnded",
    "SessionStarted",
    "Status",
    "Undecodable",
    "UnknownMessageType",
    "UnsupportedVersion",
    "decode_frame",
    "decode_message",
    "encode_frame",
    "encode_message",
    "frame_from_wire",
    "frame_to_wire",
]
