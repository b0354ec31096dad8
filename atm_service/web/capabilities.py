"""What each role can do, as shown on its home page."""

from __future__ import annotations

from dataclasses import dataclass

from atm_service.models.users import Role


@dataclass(frozen=True)
class Capability:
    title: str
    description: str
    href: str | None = None


CAPABILITIES: dict[Role, tuple[Capability, ...]] = {
    Role.ADMIN: (
        Capability("Fleet", "Sites, ATMs, cassette configuration and service contracts.", "/fleet"),
        Capability(
            "Users and roles",
            "Create accounts, change roles, unlock after failed logins (API: /api/v1/users).",
        ),
        Capability("Dispatch board", "Open tasks, engineers and SLA risk.", "/board"),
        Capability("Service figures", "Availability, response and restore times, SLA.", "/kpis"),
        Capability(
            "Cash planning",
            "Demand forecasts, cassettes running low, replenishment plans and routes.",
            "/cash",
        ),
        Capability(
            "Safe locks",
            "Locks and their code chains, alarms, provisioning records.",
            "/locks",
        ),
        Capability(
            "Lock-access log", "Every code, seal and decision; verify and export.", "/audit/locks"
        ),
        Capability(
            "Reconciliation",
            "Runs over journals, paper rolls and host files; discrepancies and their resolution.",
            "/reconciliation",
        ),
        Capability("API", "The REST API and its OpenAPI document.", "/openapi.json"),
    ),
    Role.DISPATCHER: (
        Capability("Fleet", "Every ATM with its site, region, contract and cassettes.", "/fleet"),
        Capability(
            "Dispatch board",
            "Open tasks by SLA risk: who has them, where they stand; assign and reassign.",
            "/board",
        ),
        Capability(
            "Service figures",
            "Availability, time to respond and to restore, first-time fix, SLA compliance.",
            "/kpis",
        ),
        Capability(
            "Cash planning",
            "Forecast against actual per ATM, when each cassette reaches its minimum, the "
            "replenishment plan (visit days, notes to load) and the engineers' routes; open "
            "the planned tasks.",
            "/cash",
        ),
        Capability(
            "Safe locks and alarms",
            "Codes out, seals overdue, duress and lockouts; force-close, resync, lock trails.",
            "/locks",
        ),
    ),
    Role.ENGINEER: (
        Capability(
            "My dispatches",
            "The tasks assigned to you, by deadline: accept, travel, arrive, resolve.",
            "/my",
        ),
        Capability(
            "Safe access",
            "On site, open a task: get the safe lock's one-time code and report its close seal.",
            "/my",
        ),
    ),
    Role.RECONCILER: (
        Capability(
            "Reconciliation runs",
            "Start a run from uploaded files (EJ, paper, host, counters, or an archive of "
            "them) or from the days the ATMs' agents already uploaded; follow its progress; "
            "open the HTML report with its charts.",
            "/reconciliation",
        ),
        Capability(
            "Open discrepancies",
            "Filter by kind, terminal, day, who is owed, status and amount; open one with its "
            "EJ, paper, host and counters evidence side by side; resolve it with a note.",
            "/reconciliation/discrepancies?status=open",
        ),
        Capability(
            "Money owed to customers",
            "The open findings where a customer is owed, nearest dispute deadline first; "
            "export them as CSV, XLSX or JSONL.",
            "/reconciliation/discrepancies?status=open&owed_to=customer&sort=deadline",
        ),
        Capability("Fleet", "Terminals, dialects and cassette denominations.", "/fleet"),
    ),
    Role.AUDITOR: (
        Capability("Fleet", "Read-only view of sites and ATMs.", "/fleet"),
        Capability("Service figures", "Availability and SLA compliance per ATM.", "/kpis"),
        Capability(
            "Lock-access log",
            "Who opened which safe when, filtered by ATM, user, event and date; verify and export.",
            "/audit/locks",
        ),
        Capability("Safe locks", "Every lock, its chain and its alarms (read-only).", "/locks"),
        Capability(
            "Reconciliation",
            "Read-only: every run, its sources and reports, each discrepancy with its evidence "
            "and the audit trail of who resolved it, when and why.",
            "/reconciliation",
        ),
    ),
}

ROLE_TITLES: dict[Role, str] = {
    Role.ADMIN: "Administrator",
    Role.DISPATCHER: "Dispatcher",
    Role.ENGINEER: "Field engineer",
    Role.RECONCILER: "Reconciliation",
    Role.AUDITOR: "Auditor",
}
