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
        Capability("API", "The REST API and its OpenAPI document.", "/openapi.json"),
    ),
    Role.DISPATCHER: (
        Capability("Fleet", "Every ATM with its site, region, contract and cassettes.", "/fleet"),
        Capability("Dispatch", "Turn faults and low cash into tasks and send the right engineer."),
    ),
    Role.ENGINEER: (
        Capability(
            "My dispatches",
            "The tasks assigned to you, by deadline: accept, travel, arrive, resolve.",
        ),
        Capability("Safe access", "One-time codes for the safe lock of an ATM you are at."),
    ),
    Role.RECONCILER: (
        Capability("Fleet", "Terminals, dialects and cassette denominations.", "/fleet"),
        Capability(
            "Reconciliation",
            "Match journals, paper rolls and host records; work the discrepancies.",
        ),
    ),
    Role.AUDITOR: (
        Capability("Fleet", "Read-only view of sites and ATMs.", "/fleet"),
        Capability("Lock-access log", "Who opened which safe when, and the log's verification."),
    ),
}

ROLE_TITLES: dict[Role, str] = {
    Role.ADMIN: "Administrator",
    Role.DISPATCHER: "Dispatcher",
    Role.ENGINEER: "Field engineer",
    Role.RECONCILER: "Reconciliation",
    Role.AUDITOR: "Auditor",
}
