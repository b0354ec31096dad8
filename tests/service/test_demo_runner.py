"""The demo's runner without its processes: ports, options, the fleet it asks for, the fresh
start, and a world spec the simulators accept."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from atm_service.demo import demo_atms
from atm_service.demo_runner import DemoOptions, DemoRunner, choose_port
from atm_service.errors import DemoFailed, InvalidInput
from simulators.world import WorldSpec
from tests.support import make_settings


@pytest.fixture
def taken() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def test_a_port_asked_for_must_be_free_and_the_default_moves_on(taken: int) -> None:
    with pytest.raises(DemoFailed, match=f"port {taken} on 127.0.0.1 is in use.*--port"):
        choose_port("127.0.0.1", taken, 8000, option="--port", taken=frozenset())
    port, note = choose_port("127.0.0.1", None, taken, option="--port", taken=frozenset())
    assert port > taken
    assert note == f"port {taken} is in use; using {port}"
    # the panel never takes the service's port, even while it is still free
    free, _ = choose_port("127.0.0.1", None, port, option="--panel-port", taken=frozenset({port}))
    assert free != port


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"atms": 0}, "--atms must be 1 to 60, not 0"),
        ({"speed": 0}, "--speed must be above 0"),
        ({"baud": 10}, "--baud must be 300 to 4000000"),
        ({"port": 70000}, "--port must be 1 to 65535"),
        ({"history_days": 9}, "--history-days must be 0 to 7"),
    ],
)
def test_bad_options_are_refused_naming_them(options: dict[str, object], message: str) -> None:
    with pytest.raises(DemoFailed, match=message):
        DemoOptions(**options)  # type: ignore[arg-type]


def test_the_demo_fleet_grows_past_six_with_atms_like_the_first() -> None:
    atms = demo_atms(8)
    assert [atm.terminal_id for atm in atms][-3:] == ["T1000006", "T1000007", "T1000008"]
    assert atms[6].site == atms[0].site
    assert atms[6].lock_id == "CX-1000007"
    with pytest.raises(InvalidInput, match="1 to 60 ATMs"):
        demo_atms(61)


def test_each_start_is_fresh_and_the_world_spec_fits_the_simulators(tmp_path: Path) -> None:
    runner = DemoRunner(
        DemoOptions(data_dir=tmp_path / "demo", atms=5, port=8600, panel_port=8601),
        make_settings(),
        echo=lambda _: None,
    )
    runner.port, runner.panel_port = 8600, 8601
    runner.reset()
    (tmp_path / "demo" / "sim").mkdir()
    (tmp_path / "demo" / "atm_service.db").write_text("old")
    (tmp_path / "demo" / "keys").mkdir()
    (tmp_path / "demo" / "keys" / "kept.key").write_text("key")
    runner.reset()
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["keys"]
    runner.atms = demo_atms(5)
    spec = WorldSpec.from_file(runner.write_world_spec())
    assert spec.service_url == "http://127.0.0.1:8600"
    assert spec.panel_port == 8601
    assert spec.timezone == "America/New_York"
    assert spec.out == tmp_path / "demo" / "sim"
    first = spec.atms[0]
    assert (first.terminal_id, first.dialect) == ("T1000001", "ndc")
    assert first.denominations == (20, 50, 100, 100)
    assert first.loads == (2000, 1500, 1500, 2000)
    assert first.lock == tmp_path / "demo" / "locks" / "CX-1000001.json"
    assert spec.atms[2].dialect == "procash"
    assert spec.faults == (("T1000005", "card_reader_fault"),)


def test_one_demo_at_a_time_in_a_folder(tmp_path: Path) -> None:
    first = DemoRunner(DemoOptions(data_dir=tmp_path), make_settings(), echo=lambda _: None)
    second = DemoRunner(DemoOptions(data_dir=tmp_path), make_settings(), echo=lambda _: None)
    first.hold_data_dir()
    try:
        with pytest.raises(DemoFailed, match="another demo is running in"):
            second.hold_data_dir()
    finally:
        first.release_data_dir()
    second.hold_data_dir()
    second.release_data_dir()


def test_the_command_refuses_a_port_in_use_before_making_anything(
    taken: int, tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "atm_service",
            "demo",
            "--port",
            str(taken),
            "--data-dir",
            str(tmp_path / "demo"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 1
    assert f"error: port {taken} on 127.0.0.1 is in use" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "demo").exists()
    bad = subprocess.run(
        [sys.executable, "-m", "atm_service", "demo", "--atms", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert bad.returncode == 1
    assert "--atms must be 1 to 60, not 0" in bad.stderr
