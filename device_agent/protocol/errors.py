"""Errors of the device link: the frame codec, the message codec and the link itself.

Decoding bytes from the line raises nothing but :class:`DecodeError` subclasses,
whatever the bytes; encoding a value that cannot go on the wire raises
:class:`EncodeError`, which names the field. The link endpoints raise
:class:`LinkError` subclasses.

    ProtocolError                  base of every error of the device link
    ├── InvalidArgument            a configuration value is out of range (a ValueError)
    ├── EncodeError                a value cannot go on the wire; names the field (a ValueError)
    ├── DecodeError                bytes that are not a valid frame or message
    │   ├── CobsError              not valid COBS: a zero byte, or a block that runs past the end
    │   ├── FrameError             wrong size, length field or reserved value in the header
    │   │   └── UnsupportedVersion the header's version byte is not one this code speaks
    │   ├── ChecksumError          the CRC-32 does not match: the frame was damaged on the line
    │   └── PayloadError           an intact frame whose payload does not fit its message type
    │       └── UnknownMessageType the type byte names no message this code knows
    └── LinkError                  the link cannot do what was asked
        ├── NotConnected           there is no session with the peer right now
        ├── LinkReset              the session ended before the answer came
        ├── CommandTimeout         the device did not answer a command in time
        └── PortError              the serial port could not be opened, read or written
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every error of the device link."""


class InvalidArgument(ProtocolError, ValueError):
    """A configuration value is out of range."""


class EncodeError(ProtocolError, ValueError):
    """A value cannot be put on the wire."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class DecodeError(ProtocolError):
    """Bytes that are not a valid frame or message."""


class CobsError(DecodeError):
    """Not a valid COBS encoding."""


class FrameError(DecodeError):
    """The frame's size, length field or a reserved header value is wrong."""


class UnsupportedVersion(FrameError):
    """The frame was written by a protocol version this code does not speak."""

    def __init__(self, version: int) -> None:
        super().__init__(f"unsupported protocol version {version}")
        self.version = version


class ChecksumError(DecodeError):
    """The CRC-32 of the frame does not match its contents."""


class PayloadError(DecodeError):
    """An intact frame whose payload does not fit its message type."""


class UnknownMessageType(PayloadError):
    """The frame's type byte names no message this code knows."""

    def __init__(self, type_code: int) -> None:
        super().__init__(f"unknown message type 0x{type_code:02x}")
        self.type_code = type_code


class LinkError(ProtocolError):
    """The link cannot do what was asked."""


class NotConnected(LinkError):
    """There is no session with the peer right now."""


class LinkReset(LinkError):
    """The session ended before the answer came."""


class CommandTimeout(LinkError):
    """The device did not answer a command in time."""


class PortError(LinkError):
    """The serial port could not be opened, read or written."""
