"""Prometheus metrics of one service instance, served at ``/metrics``.

Two kinds:

- **requests**, counted in this process by :mod:`atm_service.request_log`:
  ``atm_service_http_requests_total`` and ``atm_service_http_request_duration_seconds``
  (a histogram), labelled by method, route template (``/api/v1/tasks/{task_id}``,
  never the raw path) and status code. Each process counts its own: scrape
  every instance (Prometheus adds them up), not one instance through the proxy.
- **the fleet and the work**, read from the database at scrape time
  (:mod:`atm_service.services.monitoring`), the same whichever instance answers:
  ingest lag per ATM, open tasks by state and by SLA risk, reconciliation runs
  by state, and ``atm_service_database_up``.

Each app has its own registry (no global state), so tests can build many.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from atm_service.clock import Clock
from atm_service.db import Database
from atm_service.services import monitoring

logger = logging.getLogger("atm_service.metrics")

# Seconds; from a cached page to a reconciliation upload.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class DatabaseFigures:
    """A collector that reads :func:`monitoring.snapshot` on every scrape."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock

    def describe(self) -> Iterable[Metric]:
        return []  # nothing is read at registration

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "atm_service_database_up", "1 when the database answered this scrape, else 0"
        )
        try:
            with self.database.session() as session:
                figures = monitoring.snapshot(session, now=self.clock())
        except Exception:  # a scrape must answer even when the database does not
            logger.warning("metrics: the database did not answer", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _fleet(figures)
        yield from _work(figures)


def _fleet(figures: monitoring.Snapshot) -> Iterable[Metric]:
    seen = GaugeMetricFamily(
        "atm_service_atm_last_seen_age_seconds",
        "Seconds since the ATM's agent last sent a signed request",
        labels=["terminal_id"],
    )
    journal = GaugeMetricFamily(
        "atm_service_atm_last_journal_age_seconds",
        "Seconds since journal bytes from the ATM were last stored",
        labels=["terminal_id"],
    )
    heartbeat = GaugeMetricFamily(
        "atm_service_atm_last_heartbeat_age_seconds",
        "Seconds since the ATM's agent last sent a heartbeat",
        labels=["terminal_id"],
    )
    backlog_age = GaugeMetricFamily(
        "atm_service_atm_backlog_age_seconds",
        "Age of the oldest item the ATM's agent has not uploaded, as its last heartbeat said",
        labels=["terminal_id"],
    )
    backlog_bytes = GaugeMetricFamily(
        "atm_service_atm_backlog_bytes",
        "Bytes the ATM's agent has not uploaded, as its last heartbeat said",
        labels=["terminal_id"],
    )
    for atm in figures.atms:
        labels = [atm.terminal_id]
        seen.add_metric(labels, atm.since_seen_s)
        if atm.since_journal_s is not None:
            journal.add_metric(labels, atm.since_journal_s)
        if atm.since_heartbeat_s is not None:
            heartbeat.add_metric(labels, atm.since_heartbeat_s)
        if atm.backlog_age_s is not None:
            backlog_age.add_metric(labels, atm.backlog_age_s)
        backlog_bytes.add_metric(labels, atm.backlog_bytes)
    return [seen, journal, heartbeat, backlog_age, backlog_bytes]


def _work(figures: monitoring.Snapshot) -> Iterable[Metric]:
    open_tasks = GaugeMetricFamily(
        "atm_service_tasks_open", "Open tasks by state", labels=["state"]
    )
    for state, count in figures.open_tasks.items():
        open_tasks.add_metric([state.value], count)
    risk = GaugeMetricFamily(
        "atm_service_tasks_sla",
        "Open tasks by where they stand against their SLA deadlines (ok, at_risk, breached)",
        labels=["risk"],
    )
    for level, count in figures.sla_risk.items():
        risk.add_metric([level.value], count)
    runs = GaugeMetricFamily(
        "atm_service_recon_runs", "Reconciliation runs by state", labels=["state"]
    )
    for run_state, count in figures.recon_runs.items():
        runs.add_metric([run_state.value], count)
    return [open_tasks, risk, runs]


class Metrics:
    """The registry of one app: request metrics plus the database figures."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "atm_service_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.durations = Histogram(
            "atm_service_http_request_duration_seconds",
            "Time to answer an HTTP request (a live-update stream: how long it stayed open)",
            ["method", "route", "status"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(DatabaseFigures(database, clock))

    def observe(self, *, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.durations.labels(*labels).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of everything, read now."""
        return generate_latest(self.registry)
