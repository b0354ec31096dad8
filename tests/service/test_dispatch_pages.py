"""The dispatch pages without JavaScript: lists, details, forms, the board and the KPI page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from atm_service.context import AppContext
from atm_service.models.tasks import Task, TaskState
from atm_service.models.users import Role
from atm_service.services import dispatch_rules, tasks
from tests.service.dispatch_world import World, cash_units, fault
from tests.support import FakeClock, add_user, login

MAP_LINKS = ("https://www.openstreetmap.org/", "geo:")


def browser(app: FastAPI, username: str) -> TestClient:
    client = TestClient(app)
    login(client, username)
    return client


def csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def form(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the form that posts to ``action``."""
    match = re.search(
        rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', page, re.S
    )
    assert match, f"no form for {action}"
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', match.group(1)))


@pytest.fixture
def fault_task(session: Session, world: World, clock: FakeClock) -> Task:
    task = dispatch_rules.on_device_event(
        session, atm_id=world.atms["T1000001"], event=fault(), now=clock()
    )
    assert task is not None
    return task


def test_my_dispatches_lists_mine_by_deadline(
    app: FastAPI, session: Session, world: World, fault_task: Task, clock: FakeClock
) -> None:
    dispatch_rules.on_cash_units(
        session, atm_id=world.atms["T1000001"], units=cash_units(3, 0, 0, 0), now=clock()
    )
    second_line = dispatch_rules.on_device_event(
        session,
        atm_id=world.atms["T1000003"],
        event=fault(description="module failure"),
        now=clock(),
    )
    assert second_line is not None
    assert second_line.engineer_id == world.engineers["erin"]
    eli = browser(app, "eli")
    page = eli.get("/my")
    assert page.status_code == 200
    ids = re.findall(r'<li class="card task[^"]*" id="task-(\d+)"', page.text)
    held = tasks.held_by(session, engineer_id=world.engineers["eli"])
    assert ids == [str(t.id) for t in sorted(held, key=lambda t: t.response_due)]
    assert ids[0] == str(fault_task.id)
    assert str(second_line.id) not in ids
    assert "in 1 h 55 min" in page.text
    assert 'data-stream="/my/stream"' in page.text
    assert '<script src="/static/dispatch.js" defer></script>' in page.text
    assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None  # nothing inline
    assert len(page.content) < 20_000


def test_an_engineer_without_a_profile_is_told(app: FastAPI, context: AppContext) -> None:
    add_user(context, Role.ENGINEER, "newbie")
    page = browser(app, "newbie").get("/my")
    assert page.status_code == 200
    assert "no engineer profile" in page.text


def test_the_detail_page_has_everything_for_the_visit(
    app: FastAPI, session: Session, world: World, fault_task: Task
) -> None:
    eli = browser(app, "eli")
    page = eli.get(f"/my/tasks/{fault_task.id}")
    assert page.status_code == 200
    text = page.text
    for expected in (
        "T1000001 · First-line repair",
        "Dispenser: note jam in presenter",
        "1 North Station Road",
        "on site by Mon 16 Nov 04:55",
        "Dispenser: fault (M-05)",
        "No earlier work recorded",
        "rules: opened",
        f'action="/my/tasks/{fault_task.id}/accept"',
        "Decline",
    ):
        assert expected in text, expected
    for url in re.findall(r'(?:src|href)="([^"]+)"', text):
        assert url.startswith("/") or url.startswith(MAP_LINKS), url
    # Every form control has a label.
    for control in re.findall(r'<(?:input|select|textarea)(?![^>]*type="hidden")[^>]*>', text):
        ident = re.search(r'id="([^"]+)"', control)
        assert ident or "aria-label" in control, control
        if ident:
            assert f'for="{ident.group(1)}"' in text, control


def test_other_engineers_tasks_do_not_exist_here(
    app: FastAPI, world: World, fault_task: Task
) -> None:
    erin = browser(app, "erin")
    page = erin.get(f"/my/tasks/{fault_task.id}")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    token = csrf(erin.get("/my").text)
    posted = erin.post(
        f"/my/tasks/{fault_task.id}/accept", data={"csrf_token": token}, follow_redirects=False
    )
    assert posted.status_code == 404


def test_a_double_tap_accepts_once(app: FastAPI, session: Session, fault_task: Task) -> None:
    eli = browser(app, "eli")
    page = eli.get(f"/my/tasks/{fault_task.id}").text
    fields = form(page, f"/my/tasks/{fault_task.id}/accept")
    assert set(fields) == {"csrf_token", "idempotency_key", "version"}
    for _ in range(2):
        response = eli.post(
            f"/my/tasks/{fault_task.id}/accept", data=fields, follow_redirects=False
        )
        assert response.status_code == 303
        assert response.headers["location"] == f"/my/tasks/{fault_task.id}"
    history = [e.action for e in tasks.history(session, task_id=fault_task.id or 0)]
    assert history.count("accept") == 1
    # The old form again, with a new key, is refused with the page and a reason.
    stale = {**fields, "idempotency_key": "another-tap"}
    again = eli.post(f"/my/tasks/{fault_task.id}/accept", data=stale)
    assert again.status_code == 409
    assert "changed since you loaded it" in again.text
    assert 'role="alert"' in again.text


def test_the_whole_visit_through_forms(app: FastAPI, session: Session, fault_task: Task) -> None:
    eli = browser(app, "eli")
    base = f"/my/tasks/{fault_task.id}"
    for action in ("accept", "depart", "arrive"):
        page = eli.get(base).text
        response = eli.post(f"{base}/{action}", data=form(page, f"{base}/{action}"))
        assert response.status_code == 200, (action, response.text[-500:])
    page = eli.get(base).text
    assert "on site" in page
    missing = eli.post(f"{base}/resolve", data=form(page, f"{base}/resolve"))
    assert missing.status_code == 422
    assert "resolution_code" in missing.text
    done = eli.post(
        f"{base}/resolve",
        data={**form(page, f"{base}/resolve"), "resolution_code": "cleared_jam", "notes": "ok"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/my"  # it left my list
    session.refresh(fault_task)
    assert fault_task.state is TaskState.RESOLVED
    assert fault_task.resolution_notes == "ok"


def test_illegal_steps_show_why(app: FastAPI, fault_task: Task) -> None:
    eli = browser(app, "eli")
    token = csrf(eli.get("/my").text)
    response = eli.post(f"/my/tasks/{fault_task.id}/arrive", data={"csrf_token": token})
    assert response.status_code == 409
    assert "Cannot arrive" in response.text
    assert "en route" in response.text
    no_csrf = eli.post(f"/my/tasks/{fault_task.id}/accept", data={})
    assert no_csrf.status_code == 403


def test_declining_hands_it_on(app: FastAPI, session: Session, fault_task: Task) -> None:
    eli = browser(app, "eli")
    base = f"/my/tasks/{fault_task.id}"
    fields = form(eli.get(base).text, f"{base}/decline")
    short = eli.post(f"{base}/decline", data={**fields, "reason": ""})
    assert short.status_code == 422
    gone = eli.post(
        f"{base}/decline", data={**fields, "reason": "flat tyre"}, follow_redirects=False
    )
    assert gone.headers["location"] == "/my"
    assert f"task-{fault_task.id}" not in eli.get("/my").text
    session.refresh(fault_task)
    assert fault_task.state is TaskState.ASSIGNED  # to Erin now


def test_replenishment_counts_through_the_form(
    app: FastAPI, session: Session, world: World, clock: FakeClock
) -> None:
    [task] = dispatch_rules.on_cash_units(
        session, atm_id=world.atms["T1000001"], units=cash_units(3, 0, 0, 0), now=clock()
    )
    eli = browser(app, "eli")
    base = f"/my/tasks/{task.id}"
    for action in ("accept", "depart", "arrive"):
        page = eli.get(base).text
        eli.post(f"{base}/{action}", data=form(page, f"{base}/{action}"))
    page = eli.get(base).text
    assert 'name="removed_c1"' in page
    assert 'name="removed_retract_bin"' in page
    assert 'name="loaded_reject_bin"' not in page
    assert "20 USD · low · 500 by counters" in page
    fields = form(page, f"{base}/counts")
    bad = eli.post(f"{base}/counts", data={**fields, "removed_c1": "lots", "loaded_c1": "2000"})
    assert bad.status_code == 422
    assert "whole number" in bad.text
    counts: dict[str, Any] = {f"removed_c{n}": str(10 * n) for n in range(1, 5)}
    counts |= {f"loaded_c{n}": "2500" for n in range(1, 5)}
    counts |= {"removed_reject_bin": "7", "removed_retract_bin": "1"}
    saved = eli.post(f"{base}/counts", data={**fields, **counts}, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    stored = tasks.counts_of(session, task_id=task.id or 0)
    assert [(c.unit_kind.value, c.unit_number, c.removed, c.loaded) for c in stored] == [
        ("cassette", 1, 10, 2500),
        ("cassette", 2, 20, 2500),
        ("cassette", 3, 30, 2500),
        ("cassette", 4, 40, 2500),
        ("reject_bin", 0, 7, 0),
        ("retract_bin", 0, 1, 0),
    ]
    page = eli.get(base).text
    assert 'value="2500"' in page  # what was entered is shown back


def test_the_board_shows_filters_and_reassigns(
    app: FastAPI, context: AppContext, session: Session, world: World, fault_task: Task,
    clock: FakeClock,
) -> None:  # fmt: skip
    south = dispatch_rules.on_device_event(
        session, atm_id=world.atms["T1000003"], event=fault(), now=clock()
    )
    assert south is not None
    add_user(context, Role.DISPATCHER, "dana")
    dana = browser(app, "dana")
    board = dana.get("/board")
    assert board.status_code == 200
    assert f'id="task-{fault_task.id}"' in board.text
    assert f'id="task-{south.id}"' in board.text
    assert "2 open" in board.text
    only_south = dana.get("/board", params={"region": "South"}).text
    assert f'id="task-{fault_task.id}"' not in only_south
    fields = form(board.text, f"/board/tasks/{fault_task.id}/reassign")
    moved = dana.post(
        f"/board/tasks/{fault_task.id}/reassign",
        data={**fields, "engineer_id": str(world.engineers["erin"]), "reason": "Eli is ill"},
        follow_redirects=False,
    )
    assert moved.status_code == 303
    assert moved.headers["location"] == "/board"
    session.refresh(fault_task)
    assert fault_task.engineer_id == world.engineers["erin"]
    page = dana.get(f"/board/tasks/{fault_task.id}").text
    assert "reassign → assigned — Eli is ill" in page
    cancel = form(page, f"/board/tasks/{fault_task.id}/cancel")
    refused = dana.post(f"/board/tasks/{fault_task.id}/cancel", data={**cancel, "reason": ""})
    assert refused.status_code == 422
    assert browser(app, "eli").get("/board").status_code == 403


def test_the_kpi_page(app: FastAPI, context: AppContext, world: World, fault_task: Task) -> None:
    add_user(context, Role.AUDITOR, "avery")
    avery = browser(app, "avery")
    page = avery.get("/kpis", params={"days": 7, "region": "North"})
    assert page.status_code == 200
    assert "Fleet availability" in page.text
    assert "T1000001" in page.text
    assert "T1000003" not in page.text
    assert avery.get("/kpis", params={"days": 5}).status_code == 422
    assert browser(app, "eli").get("/kpis").status_code == 403


def test_the_event_stream_needs_an_event_stream_client(app: FastAPI, world: World) -> None:
    eli = browser(app, "eli")
    response = eli.get("/my/stream")
    assert response.status_code == 406
    assert "text/event-stream" in response.text


def test_static_assets_are_small(client: TestClient) -> None:
    script = client.get("/static/dispatch.js")
    assert script.status_code == 200
    assert len(script.content) < 12_000
    assert len(client.get("/static/app.css").content) < 15_000
