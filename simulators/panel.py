"""The operator's panel of a simulated world: a small web page on a loopback port.

It stands for what a person at the ATMs would touch: per ATM, its status, cash
units and a fault to inject or a device to clear; its safe lock's display and
keypad (user number and code), the safe door and a cash exchange; and the
switch's files of each closed business day, to download for reconciliation.

Plain HTML forms that post and come back (so it works without script); a few
lines of script refresh the displays every two seconds. ``/state.json`` gives
the same state to programs. It only answers on the host and port it serves,
and refuses a form posted from another page's origin.
"""

from __future__ import annotations

import html
import json
import logging
import mimetypes
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

from simulators.errors import SimulatorError

if TYPE_CHECKING:
    from simulators.world import World

logger = logging.getLogger(__name__)

MAX_FORM_BYTES = 4096

# label, console words; faults taking a cassette get " unit N"
FAULTS: tuple[tuple[str, str], ...] = (
    ("Cassette low (near-empty sensor)", "cassette_low"),
    ("Dispenser jam, at the next withdrawal", "dispenser_jam"),
    ("Card reader fault", "card_reader_fault"),
    ("Receipt printer fault", "receipt_printer_fault"),
    ("Journal printer out of paper", "journal_paper_out"),
    ("Cassette missing", "cassette_missing"),
    ("Cassette inoperative", "cassette_inop"),
    ("Power failure and restart", "power_failure"),
    ("No dispense, at the next withdrawal", "no_dispense"),
    ("Host timeout, at the next withdrawal", "host_timeout"),
)
UNIT_FAULTS = frozenset({"cassette_low", "cassette_missing", "cassette_inop"})
CLEARABLE: tuple[tuple[str, str], ...] = (
    ("Dispenser", "dispenser"),
    ("Card reader", "card_reader"),
    ("Receipt printer", "receipt_printer"),
    ("Journal printer (load paper)", "journal_printer"),
    ("PIN pad", "encrypting_pin_pad"),
    ("Cassettes (reseat)", "cassettes"),
)
UNIT_LABELS = {"reject_bin": "reject bin", "retract_bin": "retract bin"}


class Panel:
    """The panel's HTTP server, on a thread of its own."""

    def __init__(self, world: World, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.world = world
        self.server = _Server((host, port), _Handler, panel=self)
        self.host = host
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="panel", kwargs={"poll_interval": 0.2}
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def origins(self, *, scheme: str) -> frozenset[str]:
        """The names this panel answers to, with ``scheme`` before each."""
        names = {self.host, "127.0.0.1", "localhost"}
        return frozenset(f"{scheme}{name}:{self.port}" for name in names)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join(5)
        self.server.server_close()

    # --- the actions -----------------------------------------------------------------

    def act(self, path: str, form: dict[str, str]) -> tuple[str, str]:
        """Carry out a posted form; returns (terminal, what happened) or raises SimulatorError."""
        match = re.fullmatch(r"/(atms|locks)/([A-Z0-9]{8})/([a-z]+)", path)
        if match is None:
            raise SimulatorError(f"no action at {path}")
        what, terminal, verb = match.groups()
        world = self.world
        if what == "atms" and verb == "fault":
            fault = form.get("fault", "")
            if fault not in {words for _, words in FAULTS}:
                raise SimulatorError(f"unknown fault {fault!r}")
            unit = form.get("unit", "1")
            words = f"{fault} unit {unit}" if fault in UNIT_FAULTS else fault
            world.command(f"{terminal} inject {words}")
            return terminal, f"{fault.replace('_', ' ')} injected"
        if what == "atms" and verb == "clear":
            device = form.get("device", "")
            return terminal, world.command(f"{terminal} clear {device}")
        if what == "atms" and verb == "replenish":
            done = world.replenish(terminal)
            return terminal, "replenished: " + _counts_text(done.taken_out, done.loaded)
        if what == "locks":
            bay = world.bay(terminal)
            if verb == "keys":
                shown = bay.key(form.get("user", ""), form.get("code", ""))
                return terminal, f"the lock shows {shown}"
            if verb == "open":
                bay.open_door()
                return terminal, "safe door open"
            if verb == "close":
                seal = bay.close_door()
                return terminal, f"safe door closed; the lock shows SEAL {seal[:4]}-{seal[4:]}"
            if verb == "relock":
                seal = bay.relock()
                return terminal, f"relocked; the lock shows SEAL {seal[:4]}-{seal[4:]}"
        raise SimulatorError(f"no action at {path}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, *, panel: Panel) -> None:
        self.panel = panel
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "atm-sim-panel"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("panel: " + format, *args)

    # --- checks ------------------------------------------------------------------------

    def _own_host(self) -> bool:
        """Only requests for this panel's own address (no DNS rebinding)."""
        panel = self.server.panel
        return self.headers.get("Host", "") in panel.origins(scheme="")

    def _same_origin(self) -> bool:
        origin = self.headers.get("Origin")
        if origin is None:
            return True
        return origin in self.server.panel.origins(scheme="http://")

    # --- answers -----------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _text(self, status: int, text: str) -> None:
        self._send(status, text.encode("utf-8"), "text/plain; charset=utf-8")

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode("utf-8"), "application/json")

    def do_GET(self) -> None:
        if not self._own_host():
            self._text(HTTPStatus.MISDIRECTED_REQUEST, "this panel answers on its own address only")
            return
        url = urlsplit(self.path)
        world = self.server.panel.world
        if url.path == "/healthz":
            self._text(HTTPStatus.OK, "ok")
        elif url.path == "/state.json":
            self._json(HTTPStatus.OK, world.state())
        elif url.path == "/":
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            page = render(world.state(), query)
            self._send(HTTPStatus.OK, page.encode("utf-8"), "text/html; charset=utf-8")
        elif url.path.startswith("/files/"):
            try:
                path = world.day_file(url.path.removeprefix("/files/"))
            except SimulatorError as exc:
                self._text(HTTPStatus.NOT_FOUND, str(exc))
                return
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self._send(
                HTTPStatus.OK,
                path.read_bytes(),
                kind,
                Content_Disposition=f'attachment; filename="{path.name}"',
            )
        else:
            self._text(HTTPStatus.NOT_FOUND, "not found")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        if not self._own_host() or not self._same_origin():
            self._text(HTTPStatus.FORBIDDEN, "forms are taken from this panel's own page only")
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_FORM_BYTES:
            self._text(HTTPStatus.BAD_REQUEST, f"a form is at most {MAX_FORM_BYTES} bytes")
            return
        raw = self.rfile.read(length).decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        wants_json = "application/json" in self.headers.get("Accept", "")
        terminal = ""
        try:
            terminal, said = self.server.panel.act(urlsplit(self.path).path, form)
            ok = True
        except SimulatorError as exc:
            said, ok = str(exc), False
            found = re.search(r"/([A-Z0-9]{8})/", self.path)
            terminal = found.group(1) if found else ""
        if wants_json:
            status = HTTPStatus.OK if ok else HTTPStatus.UNPROCESSABLE_ENTITY
            self._json(status, {"ok": ok, "said": said})
            return
        location = f"/?atm={quote(terminal)}&ok={int(ok)}&said={quote(said)}#{quote(terminal)}"
        self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", Location=location)


def _counts_text(taken_out: dict[str, int], loaded: dict[str, int]) -> str:
    out = ", ".join(f"{_label(unit)} {count}" for unit, count in taken_out.items())
    into = ", ".join(f"{_label(unit)} {count}" for unit, count in loaded.items())
    return f"taken out {out}; loaded {into}"


def _label(unit: str) -> str:
    return UNIT_LABELS.get(unit, f"cassette {unit[1:]}")


# --- the page -------------------------------------------------------------------------------

_STYLE = """
* { box-sizing: border-box }
body { font: 16px/1.4 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1b1f24 }
header { background: #1b3a5c; color: #fff; padding: .6rem 1rem }
header a, header p { color: #cfe3ff }
main { padding: .6rem; display: grid; gap: .8rem;
       grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)) }
section { background: #fff; border-radius: 8px; padding: .8rem; box-shadow: 0 1px 2px #0002 }
h1 { font-size: 1.2rem; margin: 0 } h2 { font-size: 1.1rem; margin: 0 0 .3rem }
h3 { font-size: 1rem; margin: .8rem 0 .3rem }
table { border-collapse: collapse; width: 100%; font-size: .9rem }
td, th { padding: .15rem .3rem; text-align: left } td.n { text-align: right }
.bad { color: #b00020; font-weight: 600 } .muted { color: #5c6670; font-size: .9rem }
form { display: flex; flex-wrap: wrap; gap: .4rem; align-items: end; margin: .4rem 0 }
label { font-size: .85rem }
input, select, button { font: inherit; min-height: 44px; padding: .3rem .5rem }
input { width: 8.5rem }
button { background: #1b3a5c; color: #fff; border: 0; border-radius: 6px; padding: .3rem .8rem }
.display { display: block; font: 1.4rem/1.2 ui-monospace, monospace; background: #102010;
           color: #7cfc7c; padding: .5rem; border-radius: 4px; letter-spacing: .08em }
.said { padding: .4rem; border-radius: 4px; background: #e7f3e8 }
.said.error { background: #fde8ea }
ul { margin: .2rem 0; padding-left: 1.2rem }
"""

_SCRIPT = """
setInterval(async () => {
  if (document.activeElement && document.activeElement.tagName === "INPUT") return;
  try {
    const state = await (await fetch("/state.json", {cache: "no-store"})).json();
    document.getElementById("clock").textContent = state.time.replace("T", " ");
    for (const atm of state.atms) {
      const card = document.getElementById(atm.terminal_id);
      if (!card) continue;
      const set = (f, v) => {
        const e = card.querySelector(`[data-field="${f}"]`);
        if (e) e.textContent = v;
      };
      set("service", atm.status.in_service ? "in service" : "out of service");
      set("customers", atm.transactions_today);
      set("journal", atm.journal_bytes.toLocaleString());
      set("door", atm.status.safe_door);
      for (const u of atm.units) {
        set(`count-${u.unit}`, u.count);
        set(`status-${u.unit}`, u.status);
      }
      if (atm.lock) set("display", atm.lock.display);
    }
  } catch (e) { /* the world is stopping */ }
}, 2000);
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def render(state: dict[str, Any], query: dict[str, str]) -> str:
    cards = "\n".join(_card(atm, query) for atm in state["atms"])
    days = "".join(_day(day) for day in state["days"])
    service = _e(state["service"] or "")
    clock = _e(state["time"].replace("T", " "))
    speed = _e(f"{state['speed']:g}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Simulated ATMs and safe locks</title><style>{_STYLE}</style></head>
<body><header><h1>Simulated ATMs and safe locks</h1>
<p>Site time <span id="clock">{clock}</span> (x{speed})
{f'· service <a href="{service}/login">{service}</a>' if service else ""}</p></header>
<main>
{cards}
<section aria-labelledby="switch"><h2 id="switch">Switch (host simulator): closed days</h2>
<p class="muted">Upload these with a reconciliation run from days already ingested:
the host file, and that day's paper journals and counters.</p>
<ul>{days or "<li>No business day closed yet.</li>"}</ul></section>
</main><script>{_SCRIPT}</script></body></html>
"""


KIND_LABELS = (("host", "Host"), ("paper", "Paper journals"), ("counters", "Counters"))


def _day(day: dict[str, Any]) -> str:
    """A closed day and its files by kind, each a download link."""
    parts = []
    for kind, label in KIND_LABELS:
        links = ", ".join(
            f'<a href="/files/{_e(name)}" download>{_e(name.split("/")[-1])}</a>'
            for name in day["files"]
            if name.startswith(kind + "/")
        )
        if links:
            parts.append(f"{label}: {links}")
    return f"<li><strong>{_e(day['day'])}</strong><br>" + "<br>".join(parts) + "</li>"


def _card(atm: dict[str, Any], query: dict[str, str]) -> str:
    tid = atm["terminal_id"]
    status = atm["status"]
    devices = status.get("devices", {})
    faults = [
        f"{name.replace('_', ' ')}: {state}" for name, state in devices.items() if state != "ok"
    ]
    said = ""
    if query.get("atm") == tid and query.get("said"):
        ok = query.get("ok") == "1"
        said = (
            f'<p class="said{"" if ok else " error"}" role="{"status" if ok else "alert"}">'
            f"{_e(query['said'])}</p>"
        )
    rows = "".join(
        f"<tr><th scope=row>{_e(_label(u['unit']).capitalize())}</th>"
        f"<td>{_e(u['denomination'] or '')}</td>"
        f'<td class=n data-field="count-{_e(u["unit"])}">{_e(u["count"])}</td>'
        f'<td data-field="status-{_e(u["unit"])}" class="{"" if u["status"] == "ok" else "bad"}">'
        f"{_e(u['status'])}</td></tr>"
        for u in atm["units"]
    )
    fault_options = "".join(f'<option value="{_e(w)}">{_e(label)}</option>' for label, w in FAULTS)
    clear_options = "".join(
        f'<option value="{_e(w)}">{_e(label)}</option>' for label, w in CLEARABLE
    )
    service = "in service" if status.get("in_service") else "out of service"
    units = "".join(f"<option>{n}</option>" for n in range(1, 5))
    lock = atm["lock"]
    replenish = (
        f'<form method="post" action="/atms/{_e(tid)}/replenish">'
        '<button type="submit">Replenish the cassettes</button></form>'
    )
    done = atm["replenishment"]
    if done:
        replenish += (
            f'<p class="muted" data-field="replenishment">Last cash exchange at {_e(done["at"])}: '
            f"{_e(_counts_text(done['taken_out'], done['loaded']))}</p>"
        )
    lock_html = f"<h3>Cash</h3>{replenish}"
    if lock is not None:
        lock_html = f"""
<h3>Safe lock {_e(lock["lock_id"])}</h3>
<output class="display" data-field="display"
 aria-label="Lock display of {_e(tid)}">{_e(lock["display"])}</output>
<form method="post" action="/locks/{_e(tid)}/keys">
 <label for="user-{_e(tid)}">User number</label>
 <input id="user-{_e(tid)}" name="user" inputmode="numeric" autocomplete="off" required
  maxlength="9">
 <label for="code-{_e(tid)}">Code</label>
 <input id="code-{_e(tid)}" name="code" inputmode="numeric" autocomplete="off" required
  maxlength="12">
 <button type="submit">Enter code</button></form>
<form method="post" action="/locks/{_e(tid)}/open">
 <button type="submit">Open the safe door</button></form>
{replenish}
<form method="post" action="/locks/{_e(tid)}/close">
 <button type="submit">Close the safe door</button></form>"""
    return f"""<section id="{_e(tid)}" aria-labelledby="h-{_e(tid)}">
<h2 id="h-{_e(tid)}">{_e(tid)} · {_e(atm["site"])}</h2>
{said}
<p><span data-field="service">{service}</span> ·
<span data-field="customers">{_e(atm["transactions_today"])}</span> customers today ·
journal <span data-field="journal">{_e(f"{atm['journal_bytes']:,}")}</span> bytes ·
safe door <span data-field="door">{_e(status.get("safe_door", "closed"))}</span></p>
{f'<p class="bad">{_e("; ".join(faults))}</p>' if faults else ""}
<table><thead><tr><th scope=col>Unit</th><th scope=col>Note</th>
<th scope=col class=n>Notes</th><th scope=col>Status</th></tr></thead>
<tbody>{rows}</tbody></table>
<form method="post" action="/atms/{_e(tid)}/fault">
 <label for="fault-{_e(tid)}">Fault</label>
 <select id="fault-{_e(tid)}" name="fault">{fault_options}</select>
 <label for="unit-{_e(tid)}">Cassette</label>
 <select id="unit-{_e(tid)}" name="unit">{units}</select>
 <button type="submit">Inject</button></form>
<form method="post" action="/atms/{_e(tid)}/clear">
 <label for="device-{_e(tid)}">Device</label>
 <select id="device-{_e(tid)}" name="device">{clear_options}</select>
 <button type="submit">Clear</button></form>
{lock_html}
</section>"""
