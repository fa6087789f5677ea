"""engine/labels.py: what the pages call the engine's goals, phases and vote positions."""

from deliberation.engine.goals import GOALS, vote_position
from deliberation.engine.labels import PHASE_LABELS, display_labels
from deliberation.engine.strategies.parliament import PHASES


def test_every_goal_is_labelled_as_the_engine_names_it() -> None:
    assert display_labels()["goals"] == {key: goal.label for key, goal in GOALS.items()}


def test_every_phase_of_a_debate_and_the_pages_done_step_have_a_label() -> None:
    assert set(PHASES) | {"done"} == set(PHASE_LABELS)


def test_a_debates_phases_go_to_the_page_in_the_strategys_order() -> None:
    assert display_labels()["debate_phases"] == list(PHASES)


def test_positions_follow_the_engines_bands_score_by_score() -> None:
    positions = display_labels()["positions"]
    assert positions == [vote_position(score) for score in range(10)]
    assert positions[3:7] == ["against", "abstain", "abstain", "for"]  # the bands' edges
