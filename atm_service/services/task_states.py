"""The task lifecycle as an explicit state machine.

::

    new ──assign──► assigned ──accept──► accepted ──depart──► en_route ──arrive──► on_site
     ▲                 │  ▲                 │                    │                   │
     └────decline──────┘  └───reassign──────┴────────────────────┘          resolve │ needs_parts
                                                                                     ▼
    (any open state) ──cancel──► cancelled                          resolved | needs_parts
    new | assigned ──auto_resolve──► resolved  (FLM, the device recovered)       │
                                                                            close ▼
                                                                                closed

``needs_parts`` opens a follow-up SLM task. Illegal transitions raise
:class:`~atm_service.errors.IllegalTransition` with a message that says what
the task's state is and where the action is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from atm_service.errors import IllegalTransition
from atm_service.models.tasks import TaskState


class Action(StrEnum):
    ASSIGN = "assign"
    REASSIGN = "reassign"
    ACCEPT = "accept"
    DECLINE = "decline"
    DEPART = "depart"
    ARRIVE = "arrive"
    RESOLVE = "resolve"
    NEEDS_PARTS = "needs_parts"
    CLOSE = "close"
    CANCEL = "cancel"
    AUTO_RESOLVE = "auto_resolve"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Action.ASSIGN: "assign",
    Action.REASSIGN: "reassign",
    Action.ACCEPT: "accept",
    Action.DECLINE: "decline",
    Action.DEPART: "set en route",
    Action.ARRIVE: "arrive",
    Action.RESOLVE: "resolve",
    Action.NEEDS_PARTS: "report needs parts",
    Action.CLOSE: "close",
    Action.CANCEL: "cancel",
    Action.AUTO_RESOLVE: "auto-resolve",
}


class Actor(StrEnum):
    """Who may take an action: the engineer holding the task, a dispatcher, or the system."""

    ENGINEER = "engineer"
    DISPATCHER = "dispatcher"
    SYSTEM = "system"


@dataclass(frozen=True)
class Transition:
    sources: frozenset[TaskState]
    target: TaskState
    actors: frozenset[Actor]
    needs_reason: bool = False


S = TaskState
_OPEN = frozenset({S.NEW, S.ASSIGNED, S.ACCEPTED, S.EN_ROUTE, S.ON_SITE})

TRANSITIONS: dict[Action, Transition] = {
    Action.ASSIGN: Transition(
        frozenset({S.NEW}), S.ASSIGNED, frozenset({Actor.DISPATCHER, Actor.SYSTEM})
    ),
    Action.REASSIGN: Transition(
        frozenset({S.ASSIGNED, S.ACCEPTED, S.EN_ROUTE}),
        S.ASSIGNED,
        frozenset({Actor.DISPATCHER}),
        needs_reason=True,
    ),
    Action.ACCEPT: Transition(frozenset({S.ASSIGNED}), S.ACCEPTED, frozenset({Actor.ENGINEER})),
    Action.DECLINE: Transition(
        frozenset({S.ASSIGNED, S.ACCEPTED}), S.NEW, frozenset({Actor.ENGINEER}), needs_reason=True
    ),
    Action.DEPART: Transition(frozenset({S.ACCEPTED}), S.EN_ROUTE, frozenset({Actor.ENGINEER})),
    Action.ARRIVE: Transition(frozenset({S.EN_ROUTE}), S.ON_SITE, frozenset({Actor.ENGINEER})),
    Action.RESOLVE: Transition(frozenset({S.ON_SITE}), S.RESOLVED, frozenset({Actor.ENGINEER})),
    Action.NEEDS_PARTS: Transition(
        frozenset({S.ON_SITE}), S.NEEDS_PARTS, frozenset({Actor.ENGINEER})
    ),
    Action.CLOSE: Transition(
        frozenset({S.RESOLVED, S.NEEDS_PARTS}), S.CLOSED, frozenset({Actor.DISPATCHER})
    ),
    Action.CANCEL: Transition(_OPEN, S.CANCELLED, frozenset({Actor.DISPATCHER}), needs_reason=True),
    Action.AUTO_RESOLVE: Transition(
        frozenset({S.NEW, S.ASSIGNED}), S.RESOLVED, frozenset({Actor.SYSTEM})
    ),
}


def _states(states: frozenset[TaskState]) -> str:
    ordered = [state.label for state in TaskState if state in states]
    if len(ordered) == 1:
        return ordered[0]
    return ", ".join(ordered[:-1]) + " or " + ordered[-1]


def allowed_actions(state: TaskState, actor: Actor) -> list[Action]:
    """What ``actor`` may do to a task in ``state``, in lifecycle order."""
    return [
        action
        for action, transition in TRANSITIONS.items()
        if state in transition.sources and actor in transition.actors
    ]


def check(action: Action, state: TaskState, *, actor: Actor, task_id: int | None = None) -> S:
    """The state after ``action``, or :class:`IllegalTransition` saying why not."""
    transition = TRANSITIONS[action]
    what = f"task {task_id}" if task_id is not None else "the task"
    if actor not in transition.actors:
        raise IllegalTransition(
            f"A {actor.value} cannot {action.label} a task; that is for "
            f"{' or '.join(sorted(a.value for a in transition.actors))}."
        )
    if state not in transition.sources:
        raise IllegalTransition(
            f"Cannot {action.label}: {what} is {state.label}; "
            f"{action.label} is allowed only when it is {_states(transition.sources)}."
        )
    return transition.target
