"""Service instances for the benchmarks: each a uvicorn process of its own on a loopback port.

One process per port, as docs/operations.md deploys the service behind a proxy
(uvicorn's own workers share one listening socket, and kept-alive connections
can all land on one of them). Settings are the test environment's, with cheap
password hashing, no reconciliation poller and no line per request.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_service(url: str, port: int, log: Path, *, pool_size: int) -> subprocess.Popen[bytes]:
    """Start one instance over the database at ``url``; its output goes to ``log``."""
    env = {
        **os.environ,
        "ATM_DATABASE_URL": url,
        "ATM_ENVIRONMENT": "test",
        "ATM_SECRET_KEY": secrets.token_hex(32),
        "ATM_ARGON2_TIME_COST": "1",
        "ATM_ARGON2_MEMORY_KIB": "1024",
        "ATM_ARGON2_PARALLELISM": "1",
        "ATM_DATABASE_POOL_SIZE": str(pool_size),
        "ATM_RECON_POLL_SECONDS": "0",
        "ATM_LOG_LEVEL": "WARNING",  # no line per request, as --log-level below
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "atm_service.app:create_app_from_environment",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-keep-alive",
        "75",
    ]
    with log.open("wb") as output:
        return subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


async def wait_ready(
    base_url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60
) -> None:
    """Until ``/readyz`` answers 200; the instance's log if it exits first."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"a service instance exited at start:\n{log.read_text()}")
            with suppress(httpx.TransportError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise SystemExit(f"{base_url} was not ready within {timeout:.0f} s")
            await asyncio.sleep(0.2)


def stop_service(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the instance's process group, SIGKILL if it has not ended in 15 s."""
    if process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def cpu_seconds(pid: int) -> float:
    """CPU time a process and its children have used so far (Linux /proc)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    with suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for each in pids:
        with suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total
