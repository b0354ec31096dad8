"""Serial link efficiency: journal payload bytes per second over the line rate.

A file-backed device serves two days of journal (built from the sample journals
in ``shared/formats/sample/ej``) on a pseudo-terminal throttled to 115,200 baud
8N1, which carries 11,520 bytes/s; the agent's ``DeviceLink`` opens the
terminal's path with pyserial and pulls every journal into an in-memory sink
from offset 0. Efficiency is the journal bytes stored divided by the time from
opening the link to the last byte stored, over 11,520 B/s: handshake, resync,
framing, acknowledgements and retransmissions all count against it.

Runs: a clean line (``serial_efficiency_clean``, target >= 0.90) and a noisy one
where each byte, in each direction, is corrupted with probability 1/10,000
(``serial_efficiency_noisy``, target >= 0.75). Every run checks that the stored
journals are byte-exact. Each run takes about 25 s.

    .venv/bin/python bench/serial_link.py [--kib 256] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from device_agent.link import DeviceLink  # noqa: E402
from simulators.file_backend import FileDeviceBackend  # noqa: E402
from simulators.serial_device import SerialDevice  # noqa: E402

BAUD = 115_200
LINE_RATE = BAUD / 10
TERMINAL = "T1000001"
SAMPLES = ROOT / "shared" / "formats" / "sample" / "ej"


class MemorySink:
    """Keeps what the link stores, checking that each journal grows contiguously."""

    def __init__(self) -> None:
        self.journals: dict[str, bytearray] = {}
        self.lock = threading.Lock()

    def journal_offset(self, name: str) -> int:
        with self.lock:
            return len(self.journals.get(name, b""))

    def store_journal(self, name: str, offset: int, data: bytes) -> None:
        with self.lock:
            journal = self.journals.setdefault(name, bytearray())
            if offset != len(journal):
                raise AssertionError(f"{name}: write at {offset}, journal has {len(journal)}")
            journal += data

    def store_cash_units(self, units: list[dict[str, object]], reason: str) -> None:
        pass

    def store_status(self, status: dict[str, object]) -> None:
        pass

    def store_event(self, event: dict[str, object]) -> None:
        pass


def build_journals(directory: Path, kib: int) -> dict[str, bytes]:
    """Two business days of journal text, about ``kib`` KiB in all, from the sample EJ."""
    samples = sorted(SAMPLES.glob("*.txt"))
    if not samples:
        raise SystemExit(f"no sample journals under {SAMPLES}")
    text = b"".join(path.read_bytes() for path in samples)
    while len(text) < kib * 1024:
        text += text
    text = text[: kib * 1024]
    cut = text.index(b"\n", len(text) // 2) + 1
    days = {"20261116": text[:cut], "20261117": text[cut:]}
    for name, data in days.items():
        (directory / f"{TERMINAL}_{name}.txt").write_bytes(data)
    return days


def run(directory: Path, days: dict[str, bytes], error_rate: float, seed: int) -> dict[str, float]:
    backend = FileDeviceBackend(directory, TERMINAL)
    device = SerialDevice.on_pty(
        backend, baudrate=BAUD, byte_error_rate=error_rate, rng=random.Random(seed)
    )
    sink = MemorySink()
    total = sum(len(data) for data in days.values())
    device.start()
    try:
        assert device.device_path is not None
        link = DeviceLink(device.device_path, sink, baudrate=BAUD)
        started = time.monotonic()
        link.start()
        try:
            while time.monotonic() - started < 120:
                with sink.lock:
                    stored = sum(len(data) for data in sink.journals.values())
                if stored >= total:
                    break
                time.sleep(0.005)
            elapsed = time.monotonic() - started
        finally:
            link.stop()
    finally:
        device.stop()
    for name, data in days.items():
        if bytes(sink.journals.get(name, b"")) != data:
            raise SystemExit(f"journal {name} differs after the transfer")
    stats = device.stats
    return {
        "efficiency": total / elapsed / LINE_RATE,
        "seconds": elapsed,
        "retransmissions": stats.retransmissions,
        "corrupted": device.noise.outgoing.corrupted + device.noise.incoming.corrupted
        if device.noise
        else 0,
    }


def emit(metric: str, value: float, unit: str) -> None:
    print(json.dumps({"metric": metric, "value": round(value, 4), "unit": unit}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kib", type=int, default=256, help="journal KiB per run")
    parser.add_argument("--seed", type=int, default=7, help="seed of the line noise")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        days = build_journals(directory, args.kib)
        for label, error_rate in (("clean", 0.0), ("noisy", 1e-4)):
            result = run(directory, days, error_rate, args.seed)
            emit(f"serial_efficiency_{label}", result["efficiency"], "ratio")
            emit(f"serial_seconds_{label}", result["seconds"], "s")
            emit(f"serial_retransmissions_{label}", result["retransmissions"], "frames")
            if label == "noisy":
                emit("serial_corrupted_bytes_noisy", result["corrupted"], "bytes")


if __name__ == "__main__":
    main()
