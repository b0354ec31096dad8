"""Logs carry no secrets: passwords, PINs, full card numbers, one-time codes, seals, keys,
session and CSRF tokens never reach a log line, whatever the service is asked to do.

The service is driven through logins (right and wrong), a new user, device
enrolment and signed ingest of journal lines full of card numbers, a lock's
provisioning and its export, a one-time code and its seal, and a metrics
scrape, with every logger at DEBUG and SQLAlchemy logging each statement;
then every line written is searched for each secret.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from atm_service.config import Settings
from atm_service.context import AppContext
from atm_service.logs import HANDLER_NAME, configure_logging
from atm_service.models.users import Role
from device_agent.signing import DeviceKey
from lockctl import Provisioning
from simulators.lock import SimulatedLock
from tests.ingest_support import Signed
from tests.service.dispatch_world import World
from tests.service.lock_world import lock_secrets, lock_settings, on_site, provision
from tests.support import PASSWORD, FakeClock, add_user, login, make_settings

METRICS_TOKEN = "metrics-token-" + "s" * 24
NEW_PASSWORD = "a brand new passphrase 42"
WRONG_PASSWORD = "guess guess guess"
PANS = ("4111111111111111", "5500005555555559", "340000000000009")
PIN = "7392"
JOURNAL = (
    f"08:01:02 CARD INSERTED PAN {PANS[0]} TRACK2 ;{PANS[1]}=29121011000012300000?\n"
    f"08:01:09 PIN ENTERED pin={PIN}\n"
    f"08:01:15 AMEX {PANS[2][:4]} {PANS[2][4:10]} {PANS[2][10:]} WITHDRAWAL 100.00\n"
    "08:01:20 CARD TAKEN\n"
).encode()


@pytest.fixture
def settings() -> Settings:
    return lock_settings(metrics_token=METRICS_TOKEN)


@pytest.fixture
def written() -> Iterator[io.StringIO]:
    """What the service's handler writes, every logger at DEBUG, SQL statements included."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.level
    engine_logger = logging.getLogger("sqlalchemy.engine")
    engine_level = engine_logger.level
    configure_logging(make_settings(log_level="DEBUG"), stream)
    engine_logger.setLevel(logging.INFO)
    yield stream
    engine_logger.setLevel(engine_level)
    for handler in list(root.handlers):
        if handler.get_name() == HANDLER_NAME:
            root.removeHandler(handler)
    root.setLevel(saved)


def test_no_secret_reaches_the_logs(
    written: io.StringIO,  # first: SQLAlchemy decides on statement logging per connection
    app: FastAPI,
    client: TestClient,
    context: AppContext,
    session: Session,
    world: World,
    clock: FakeClock,
) -> None:
    secrets: dict[str, str] = {
        "password": PASSWORD,
        "new user's password": NEW_PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "metrics token": METRICS_TOKEN,
        "master key": lock_secrets()[0].split(":")[-1],
        "signing key": lock_secrets()[1].splitlines()[1],
        "PIN": f"pin={PIN}",
    }
    secrets |= {f"PAN {pan}": pan for pan in PANS}
    secrets["grouped PAN"] = f"{PANS[2][:4]} {PANS[2][4:10]} {PANS[2][10:]}"

    # Logging in, wrong and right, through the API and the form.
    admin_name = add_user(context, Role.ADMIN, "ada")
    assert (
        client.post(
            "/api/v1/session", json={"username": admin_name, "password": WRONG_PASSWORD}
        ).status_code
        == 401
    )
    admin = login(client, admin_name)
    secrets["session cookie"] = client.cookies[context.settings.session_cookie_name]
    secrets["CSRF token"] = admin.csrf_token
    form = TestClient(app)
    page = form.get("/login").text
    login_csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    secrets["login form token"] = login_csrf
    response = form.post(
        "/login",
        data={"username": admin_name, "password": PASSWORD, "csrf_token": login_csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303

    # A new user with a password.
    created = admin.post(
        "/api/v1/users",
        json={
            "username": "newbie",
            "full_name": "New Person",
            "role": "auditor",
            "password": NEW_PASSWORD,
        },
    )
    assert created.status_code == 201, created.text

    # Device enrolment and signed ingest of journal lines with card numbers and a PIN.
    device_key = DeviceKey.generate()
    secrets["device private key"] = device_key.pem().decode().splitlines()[1]
    enrolled = admin.post(
        f"/api/v1/atms/{world.atms['T1000001']}/device-keys",
        json={"public_key": device_key.public_key_b64},
    )
    assert enrolled.status_code == 201, enrolled.text
    device = Signed(client, context, device_key)
    stored = device.put_journal("T1000001", "20261116", 0, JOURNAL)
    assert stored.status_code == 200, stored.text
    clash = device.put_journal("T1000001", "20261116", 0, JOURNAL.replace(b"CARD", b"CASH"))
    assert clash.status_code == 409  # an error path, with the bytes it refused

    # A lock: provisioning, its record with the key in clear, a code and its seal.
    provision(session, context, world)
    session.commit()
    record = admin.post(
        f"/api/v1/atms/{world.atms['T1000001']}/lock/provisioning-record",
        json={"reason": "load the lock"},
    )
    assert record.status_code == 200, record.text
    lock = SimulatedLock(Provisioning.from_json(record.content), clock=clock)
    secrets["lock key"] = record.json()["key"]
    task = on_site(session, world, clock)
    session.commit()
    eli = login(TestClient(app), "eli")
    issued = eli.post(f"/api/v1/atms/{task.atm_id}/lock/codes", json={"task_id": task.id})
    assert issued.status_code == 201, issued.text
    code = issued.json()["code"]
    secrets["one-time code"] = code
    assert lock.enter_code(issued.json()["user_number"], code).name == "OPENED"
    seal = lock.relock()
    secrets["close seal"] = seal
    sealed = eli.post(
        f"/api/v1/atms/{task.atm_id}/lock/seal", json={"task_id": task.id, "seal": seal}
    )
    assert sealed.status_code == 200, sealed.text

    # A metrics scrape with its bearer token.
    scrape = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scrape.status_code == 200

    text = written.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    # The logs did see all of this happen (so the search below means something) ...
    routes = {line.get("route") for line in lines if line["msg"] == "request"}
    assert "/api/v1/devices/{terminal_id}/journals/{name}" in routes
    assert "/api/v1/atms/{atm_id}/lock/codes" in routes
    assert "/api/v1/atms/{atm_id}/lock/provisioning-record" in routes
    assert any("INSERT INTO journal_chunk" in line["msg"] for line in lines)
    assert any("INSERT INTO app_user" in line["msg"] for line in lines)
    # ... and wrote none of the secrets.
    for what, secret in secrets.items():
        assert secret, what
        assert secret not in text, f"the logs show the {what}"


def test_card_numbers_and_secrets_in_messages_are_masked(written: io.StringIO) -> None:
    """What code might log by mistake is masked on the way out."""
    log = logging.getLogger("atm_service.test")
    log.warning("journal line: CARD %s DISPENSED", PANS[0])
    log.info("posted %s", {"username": "ada", "password": PASSWORD, "otc": "12345678"})
    log.info("header Authorization: Bearer %s", METRICS_TOKEN)
    log.info("upload", extra={"pin": PIN, "csrf_token": "abc", "track": f";{PANS[1]}=2912?"})
    try:
        raise ValueError(f"bad seal=99887766 for card {PANS[2]}")
    except ValueError:
        log.exception("failed")
    text = written.getvalue()
    for secret in (*PANS, PASSWORD, "12345678", METRICS_TOKEN, PIN, "99887766"):
        assert secret not in text, secret
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["msg"] == "journal line: CARD 411111******1111 DISPENSED"
    assert lines[3]["pin"] == "[redacted]"
    assert lines[3]["track"] == ";550000******5559=2912?"
    assert "ValueError: bad seal=[redacted] for card 340000*****0009" in lines[4]["exc"]
