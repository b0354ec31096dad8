"""A world from a spec: ATMs that start with a closed day behind them, a cassette's low
sensor, the spec's checks, and the panel working an ATM and its safe lock over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from lockctl import LockControl, LockKey, LockPolicy, Operation, Provisioning
from simulators.errors import ConfigurationError
from simulators.live import AcceleratedClock, LiveAtm
from simulators.world import World, WorldSpec

KEY = LockKey("CX-1000001", 1, bytes(range(32)))
POLICY = LockPolicy()


def test_an_atm_started_in_the_past_has_closed_that_day_and_reports_from_now(
    tmp_path: Path,
) -> None:
    now = datetime(2026, 11, 17, 9, 30)
    atm = LiveAtm(
        tmp_path, AcceleratedClock(now, 1.0), since=now.date() - timedelta(days=1), seed=3
    )
    for name in ("ej/T1000001_20261116.txt", "paper/T1000001_20261116.txt"):
        assert (tmp_path / name).stat().st_size > 1000, name
    assert (tmp_path / "host" / "20261116.iso").exists()
    assert (tmp_path / "counters" / "T1000001_20261116.json").exists()
    assert [name for name, _ in atm.journals()] == ["20261116", "20261117"]
    assert atm.transactions_today() > 0  # this morning's customers too
    assert atm.poll_events() == []  # the past is in the files, not reported as news
    with pytest.raises(ConfigurationError, match="after the clock's day"):
        LiveAtm(tmp_path / "other", AcceleratedClock(now, 1.0), since=now.date() + timedelta(1))


def test_a_cassette_low_sensor_reports_low_until_the_cash_exchange(tmp_path: Path) -> None:
    atm = LiveAtm(tmp_path, AcceleratedClock(datetime(2026, 11, 17, 9, 30), 1.0))
    atm.poll_events()
    atm.inject("cassette_low", unit=2)
    (event,) = atm.poll_events()
    assert event["kind"] == "cash_unit_threshold"
    assert (event["unit"], event["status"]) == (2, "low")
    second = atm.cash_units()[1]
    assert second["usStatus"] == 3
    assert second["ulCount"] == second["ulInitialCount"]  # no note left without a customer
    assert "CASSETTE 2 LOW" in (tmp_path / "ej" / "T1000001_20261117.txt").read_text()
    atm.inject("cassette_low", unit=2)  # tripped already: nothing new
    assert atm.poll_events() == []
    atm.service_visit(replenish=True)
    assert atm.cash_units()[1]["usStatus"] == 0
    with pytest.raises(ConfigurationError, match="cassette unit must be 1-4"):
        atm.inject("cassette_low", unit=5)


def _spec_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "format": "atm-sim-world",
        "out": "sim",
        "timezone": "UTC",
        "atms": [{"terminal_id": "T1000001", "lock": "CX-1000001.json"}],
        "panel": {"port": 0},
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "other"}, "format 'atm-sim-world'"),
        ({"atms": []}, "atms list is empty"),
        ({"atms": [{"terminal_id": "t1"}]}, "'t1' is not 8 letters or digits"),
        ({"atms": [{"terminal_id": "T1000001", "dialect": "xx"}]}, "dialect must be ndc"),
        ({"atms": [{"terminal_id": "T1000001", "loads": [1, 2]}]}, "loads must be four"),
        ({"speed": 0}, "speed must be positive"),
        ({"speed": "fast"}, "speed must be a number"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"faults": [{"terminal_id": "T9", "fault": "x"}]}, "names T9, not in atms"),
        ({"service": "http://127.0.0.1:1"}, "keys must be non-empty text"),
    ],
)
def test_a_bad_spec_is_refused_naming_what_is_wrong(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        WorldSpec.from_dict(_spec_data(**changes), base=tmp_path)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    (tmp_path / "CX-1000001.json").write_text(Provisioning(KEY, POLICY).to_json())
    spec_file = tmp_path / "world.json"
    spec_file.write_text(
        json.dumps(
            _spec_data(
                atms=[
                    {"terminal_id": "T1000001", "lock": "CX-1000001.json", "site": "Station"},
                    {"terminal_id": "T1000002", "dialect": "procash"},
                ],
                mean_transactions=50,
            )
        )
    )
    world = World(WorldSpec.from_file(spec_file), echo=lambda _: None)
    world.start()
    try:
        yield world
    finally:
        world.stop()


def _post(world: World, path: str, **form: str) -> httpx.Response:
    return httpx.post(
        world.panel.url.rstrip("/") + path, data=form, headers={"Accept": "application/json"}
    )


def test_the_panel_works_an_atm_and_its_safe_lock(world: World) -> None:
    url = world.panel.url
    page = httpx.get(url)
    assert page.status_code == 200
    assert "Safe lock CX-1000001" in page.text
    assert "T1000002" in page.text
    state = httpx.get(url + "state.json").json()
    assert [atm["terminal_id"] for atm in state["atms"]] == ["T1000001", "T1000002"]
    assert state["atms"][0]["lock"]["display"] == "ENTER CODE"
    assert state["atms"][1]["lock"] is None
    (day,) = state["days"]
    assert "host/" + day["day"].replace("-", "") + ".iso" in day["files"]
    download = httpx.get(url + "files/" + day["files"][0])
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment")
    assert httpx.get(url + "files/../world.json").status_code == 404

    answer = _post(world, "/atms/T1000001/fault", fault="cassette_low", unit="3")
    assert answer.json() == {"ok": True, "said": "cassette low injected"}
    units = httpx.get(url + "state.json").json()["atms"][0]["units"]
    assert units[2]["status"] == "low"
    answer = _post(world, "/atms/T1000001/fault", fault="meteor_strike")
    assert answer.status_code == 422
    assert answer.json()["said"] == "unknown fault 'meteor_strike'"

    # The safe stays shut without a code; a code from the service opens it.
    answer = _post(world, "/atms/T1000001/replenish")
    assert "the safe of T1000001 is closed" in answer.json()["said"]
    assert _post(world, "/locks/T1000001/keys", user="7", code="1234 5678").json() == {
        "ok": True,
        "said": "the lock shows WRONG CODE",
    }
    assert "user number is 1 to 9 digits" in _post(world, "/locks/T1000001/keys", user="x").text
    control = LockControl(POLICY)
    chain = control.provision(KEY)
    issued = control.issue(chain, KEY, user=7, operation=Operation.ROUTE, now=datetime.now(UTC))
    said = _post(world, "/locks/T1000001/keys", user="7", code=issued.codes[0].code).json()
    assert said == {"ok": True, "said": "the lock shows OPEN"}
    assert _post(world, "/locks/T1000001/open").json()["said"] == "safe door open"
    said = _post(world, "/atms/T1000001/replenish").json()["said"]
    assert said.startswith("replenished: taken out cassette 1 ")
    assert "reject bin" in said
    assert "; loaded cassette 1 2000, cassette 2 2000, cassette 3 1500, cassette 4 1500" in said
    said = _post(world, "/locks/T1000001/close").json()["said"]
    assert said.startswith("safe door closed; the lock shows SEAL ")
    seal = said.rsplit(" ", 1)[1].replace("-", "")
    assert control.verify_seal(issued.chain, KEY, seal, now=datetime.now(UTC)).duress is False
    # the lock's door is the ATM's safe door: the ATM reports it
    assert world.atm("T1000001").device_status()["safe_door"] == "closed"
    kinds = [event["kind"] for event in world.atm("T1000001").poll_events()]
    assert kinds.count("safe_door") >= 1
    # the lock's memory holds the new chain position
    memory = json.loads((world.spec.out / "locks" / "CX-1000001.memory.json").read_text())
    assert memory["state"]["sequence"] == 1


def test_the_panel_answers_only_its_own_page(world: World) -> None:
    url = world.panel.url.rstrip("/")
    port = world.panel.port
    assert httpx.get(url + "/", headers={"Host": f"evil.example:{port}"}).status_code == 421
    refused = httpx.post(
        url + "/atms/T1000001/fault",
        data={"fault": "card_reader_fault"},
        headers={"Origin": "http://evil.example"},
    )
    assert refused.status_code == 403
    assert httpx.get(url + "/state.json").json()["atms"][0]["status"]["in_service"] is True
    # a form posted from the page itself comes back to the page with what happened
    posted = httpx.post(
        url + "/atms/T1000002/fault",
        data={"fault": "card_reader_fault"},
        headers={"Origin": url},
    )
    assert posted.status_code == 303
    assert posted.headers["location"].startswith("/?atm=T1000002&ok=1&said=card%20reader")
    assert "T1000002 has no safe lock" in _post(world, "/locks/T1000002/open").text
