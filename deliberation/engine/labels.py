"""What pages call the engine's things: one definition, sent to the browser as JSON.

The page scripts read these (frontend/static/js/labels.js, from the `hemicycle-labels` block that
base.html writes) instead of keeping their own copies, which drift."""

from deliberation.engine.goals import GOALS, vote_position
from deliberation.engine.strategies.parliament import PHASES

# A run's phases (strategies.parliament.PHASES) as its pages name them; "done" is the page's own last step (the outcome is in).
PHASE_LABELS: dict[str, str] = {
    "opening": "Opening statements",
    "negotiation": "Negotiation",
    "drafting": "Drafting",
    "amendments": "Amendments",
    "vote": "Vote",
    "done": "Done",
}

SCORES = range(10)  # the judge's 0..9 support scale


def display_labels() -> dict:
    """Goals, phases (and a debate's order of them) and the vote position of each support score,
    as plain JSON data."""
    return {
        "goals": {key: goal.label for key, goal in GOALS.items()},
        "phases": PHASE_LABELS,
        "debate_phases": list(PHASES),
        "positions": [vote_position(score) for score in SCORES],
    }
