"""Line noise for tests and benchmarks: bytes corrupted at random, reproducibly.

:class:`ByteCorrupter` damages each byte independently with a given probability
(a damaged byte is XORed with a random non-zero value, so it always changes);
:class:`NoisyPort` applies one to each direction of a port. Both take a seeded
``random.Random``, so a failing run can be replayed. The distance to the next
damaged byte is drawn from the geometric distribution, so clean stretches cost
nothing per byte.
"""

from __future__ import annotations

import math
import random

from simulators.ports import Port


class ByteCorrupter:
    """Corrupts each byte passing through with probability ``probability``."""

    def __init__(self, probability: float, rng: random.Random) -> None:
        if not 0.0 <= probability < 1.0:
            raise ValueError(f"probability must be in [0, 1), got {probability}")
        self.probability = probability
        self._rng = rng
        self._log_keep = math.log1p(-probability) if probability > 0 else 0.0
        self.seen = 0
        self.corrupted = 0
        self._until_next = self._draw()

    def _draw(self) -> int:
        """Number of clean bytes before the next damaged one."""
        if self.probability <= 0:
            return -1
        return int(math.log(1.0 - self._rng.random()) / self._log_keep)

    def __call__(self, data: bytes) -> bytes:
        self.seen += len(data)
        if self._until_next < 0 or self._until_next >= len(data):
            if self._until_next >= 0:
                self._until_next -= len(data)
            return data
        out = bytearray(data)
        position = self._until_next
        while 0 <= position < len(out):
            out[position] ^= self._rng.randrange(1, 256)
            self.corrupted += 1
            position += 1 + self._draw()
        self._until_next = position - len(out)
        return bytes(out)


class NoisyPort:
    """A port whose bytes are corrupted in both directions with the given probability."""

    def __init__(self, inner: Port, probability: float, rng: random.Random) -> None:
        self.inner = inner
        self.outgoing = ByteCorrupter(probability, random.Random(rng.getrandbits(64)))
        self.incoming = ByteCorrupter(probability, random.Random(rng.getrandbits(64)))

    def read(self, size: int, timeout: float) -> bytes:
        return self.incoming(self.inner.read(size, timeout))

    def write(self, data: bytes) -> None:
        self.inner.write(self.outgoing(data))

    def close(self) -> None:
        self.inner.close()
