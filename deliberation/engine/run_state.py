"""A run's state rebuilt from its event log alone, as any client of the log (the run page, an
export, a script reading /api/v1/runs/{id}/events) can rebuild it.

The run service keeps its own record of a run (the Run row: status, outcome, tokens; the
per-group scores); this is the reading of the events that record must agree with. As in Zulip's
`verify_action`, tests/unit/runs/test_event_rebuild.py plays every strategy through the services
and checks both against each other, so an event that fails to carry what the service knows is
caught when the strategy is added, not by a client later.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from deliberation.engine.events import Event
from deliberation.engine.strategies.base import usage_totals

# What a `control` event's action leaves the run in. A classroom session's run also starts and
# ends by control events (its other actions: engine/classroom.py's sitting reads them).
CONTROL_STATUS = {
    "paused": "paused",
    "resumed": "running",
    "stopped": "stopped",
    "started": "running",
    "ended": "stopped",
}


@dataclass
class RunState:
    status: str = "queued"  # queued, running, paused, stopped, finished or failed (runs.models.Run.Status)
    strategy: str | None = None
    phase: str | None = None
    round: int | None = None
    drafts: list[str] = field(default_factory=list)  # every draft's text, in order
    text: str | None = None  # the draft as it stands (the last draft, or an accepted amendment's text)
    votes: dict[str, float] = field(default_factory=dict)
    fallbacks: list[str] = field(default_factory=list)
    tally: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    error: str | None = None  # the message of a final error: the run gave up
    last_seq: int = 0
    usage: dict[str, float] = field(default_factory=dict)  # strategies.base.usage_totals

    def apply(self, event: Event) -> None:
        kind, data = event["type"], event["data"]
        self.last_seq = max(self.last_seq, event["seq"])
        if kind == "run_started":  # a classroom session waits in its lobby until the teacher starts it
            self.strategy, self.status = data["strategy"], "queued" if data.get("classroom") else "running"
        elif kind == "phase":
            self.phase, self.round = data["phase"], data.get("round")
        elif kind == "draft":
            self.drafts.append(data["text"])
            self.text = data["text"]
        elif kind == "amendment_decision" and data["accepted"]:
            self.text = data["draft_after"]
        elif kind == "vote":
            self.votes[data["group"]] = data["score"]
            if data["fallback"]:
                self.fallbacks.append(data["group"])
        elif kind == "tally":
            self.tally = data
        elif kind == "outcome":
            self.outcome, self.status = data, "finished"
        elif kind == "error" and data["final"]:
            self.error, self.status = data["message"], "failed"
        elif kind == "error" and "turn" not in data:  # the run waits in the queue for its next attempt
            self.status = "queued"  # (a classroom agent's failed turn stays due: the session goes on)
        elif kind == "control" and data["action"] in CONTROL_STATUS:
            self.status = CONTROL_STATUS[data["action"]]


def run_state(events: Iterable[Event]) -> RunState:
    """The state after `events` (in sequence order)."""
    state = RunState()
    events = list(events)
    for event in events:
        state.apply(event)
    state.usage = usage_totals(events)
    return state
