"""Choosing the journal chunk size from the line's error rate.

Every frame costs a fixed overhead (header, CRC, COBS, delimiter, the
JOURNAL_DATA fields); a longer frame spreads it thinner but is more likely to be
hit by a corrupted byte, and a hit frame is sent again whole. For a byte error
rate ``p`` and per-frame overhead ``o``, the share of the line that is useful
payload with ``n`` data bytes per frame is

    efficiency(n) = n / (n + o) · (1 − p)^(n + o)

which is largest at ``n = (−o + √(o² + 4o/q)) / 2`` with ``q = −ln(1 − p)``. The
device end measures the fraction of its frames it had to send again,
:class:`LossEstimator` turns that into ``p``, and :func:`best_chunk_size` gives
the chunk size, within bounds: a clean line gets the largest chunk.
"""

from __future__ import annotations

import math

FRAME_OVERHEAD = 8 + 4 + 1 + 1 + 14
"""Header, CRC, COBS code byte, delimiter, and JOURNAL_DATA's fields for an 8-character name."""


def efficiency(size: int, byte_error_rate: float, overhead: int = FRAME_OVERHEAD) -> float:
    """Expected payload share of the line with ``size`` data bytes per frame."""
    framed = size + overhead + math.ceil((size + overhead) / 254) - 1
    return size / framed * (1.0 - byte_error_rate) ** framed


def best_chunk_size(
    byte_error_rate: float, *, low: int, high: int, overhead: int = FRAME_OVERHEAD
) -> int:
    """The data bytes per frame that maximise :func:`efficiency`, clamped to [low, high]."""
    if byte_error_rate <= 0:
        return high
    q = -math.log1p(-min(byte_error_rate, 0.5))
    best = (-overhead + math.sqrt(overhead * overhead + 4 * overhead / q)) / 2
    return max(low, min(high, int(best)))


class LossEstimator:
    """Smoothed byte error rate, from how many frames had to be sent again.

    ``update(frames, resent, frame_bytes)`` takes running totals; every ``period``
    frames the loss fraction of that period is folded into the estimate.
    """

    def __init__(self, *, period: int = 64, weight: float = 0.3) -> None:
        self.period = period
        self.weight = weight
        self.byte_error_rate = 0.0
        self._frames = 0
        self._resent = 0
        self._bytes = 0

    def update(self, frames: int, resent: int, frame_bytes: int) -> float:
        count = frames - self._frames
        if count < self.period:
            return self.byte_error_rate
        lost = min(max(resent - self._resent, 0), count - 1) / count
        mean_size = max((frame_bytes - self._bytes) / count, 1.0)
        sample = -math.log1p(-lost) / mean_size
        self.byte_error_rate = (1 - self.weight) * self.byte_error_rate + self.weight * sample
        self._frames, self._resent, self._bytes = frames, resent, frame_bytes
        return self.byte_error_rate
