"""runs/counterfactuals.py: a finished run's stored scores re-tallied under other seats and rules."""

import pytest

from deliberation.records.models import PartyGroup
from deliberation.runs.counterfactuals import (
    CounterfactualError,
    NotFinished,
    cell_without_strategy,
    run_competitors,
    run_counterfactual,
)
from deliberation.runs.models import Experiment, Run
from deliberation.runs.services import run_create
from deliberation.scenarios.services import scenario_seats
from tests.factories import make_record, make_user, scenario_config

pytestmark = pytest.mark.django_db

SEATS = {"EPP": 0.5, "SD": 0.3, "ALDE": 0.2}


def finished_run(
    *,
    owner,
    record,
    scores,
    seats=SEATS,
    goal="simple_majority",
    veto="",
    experiment=None,
    strategy="parliament",
    cell="",
    seed=7,
) -> Run:
    run = run_create(owner=owner, config=scenario_config(record), experiment=experiment, cell=cell)
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.FINISHED,
        seats=seats,
        goal=goal,
        veto_group=veto,
        strategy=strategy,
        seed=seed,
        outcome={"scores": scores, "seats": seats, "goal": goal, "goals": {goal: True}, "weighted_total": 0},
    )
    return Run.objects.select_related("record").get(pk=run.pk)


@pytest.fixture
def record():
    return make_record()


@pytest.fixture
def alice():
    return make_user("alice")


def test_the_runs_own_seats_reproduce_the_original(alice, record):
    run = finished_run(owner=alice, record=record, scores={"EPP": 9, "SD": 2, "ALDE": 3})
    result = run_counterfactual(run=run)
    # u = 4.5 + 0.6 + 0.6 = 5.7
    assert result["original"]["weighted_total"] == pytest.approx(5.7)
    assert result["counterfactual"] == result["original"]
    assert result["original"]["result"] is True and result["stored"]["result"] is True


def test_equal_seats_turn_a_pass_into_a_fail(alice, record):
    run = finished_run(owner=alice, record=record, scores={"EPP": 9, "SD": 2, "ALDE": 3})
    result = run_counterfactual(run=run, seats="equal")
    assert result["counterfactual"]["weighted_total"] == pytest.approx(14 / 3)
    assert result["counterfactual"]["result"] is False and result["original"]["result"] is True
    assert result["counterfactual"]["seats"] == pytest.approx({"EPP": 1 / 3, "SD": 1 / 3, "ALDE": 1 / 3})


def test_custom_weights_are_normalised(alice, record):
    run = finished_run(owner=alice, record=record, scores={"EPP": 9, "SD": 2, "ALDE": 3})
    result = run_counterfactual(run=run, seats="custom", custom={"EPP": 1, "SD": 1, "ALDE": 2})
    assert result["counterfactual"]["seats"] == pytest.approx({"EPP": 0.25, "SD": 0.25, "ALDE": 0.5})
    assert result["counterfactual"]["weighted_total"] == pytest.approx(4.25)
    with pytest.raises(CounterfactualError, match="custom: give a weight"):
        run_counterfactual(run=run, seats="custom", custom={"EPP": 1})
    with pytest.raises(CounterfactualError, match="custom: every weight"):
        run_counterfactual(run=run, seats="custom", custom={"EPP": 1, "SD": 0, "ALDE": 1})


def test_random_tenths_follow_the_seed(alice, record):
    run = finished_run(owner=alice, record=record, scores={"EPP": 9, "SD": 2, "ALDE": 3})
    one = run_counterfactual(run=run, seats="random_tenths", seed=11)["counterfactual"]["seats"]
    expected = scenario_seats(record=record, groups=run.groups, structure="random_tenths", seed=11)
    assert one == expected
    assert all(round(share * 10) == pytest.approx(share * 10) for share in one.values())


def test_real_seats_of_the_term(alice, record):
    for code, seats in {"EPP": 265, "SD": 184, "ALDE": 84}.items():
        PartyGroup.objects.filter(code=code, term="7th").update(seats_at_start=seats)
    run = finished_run(owner=alice, record=record, scores={"EPP": 9, "SD": 2, "ALDE": 3})
    result = run_counterfactual(run=run, seats="real")
    assert result["counterfactual"]["seats"]["EPP"] == pytest.approx(265 / 533)


def test_rules_beyond_the_goals_and_power(alice, record):
    run = finished_run(owner=alice, record=record, scores={"EPP": 9, "SD": 2, "ALDE": 3})
    result = run_counterfactual(run=run, rule="double_majority")
    # only EPP is for: 1 of 3 groups
    assert result["rule"]["kind"] == "pass" and result["counterfactual"]["result"] is False
    power = {g["code"]: g for g in result["counterfactual"]["power"]["groups"]}
    # 65% of seats and 2 of 3 groups: EPP with either partner; SD+ALDE has 0.5 only
    assert power["EPP"]["shapley_shubik_fraction"] == "2/3"
    simple = run_counterfactual(run=run, rule="simple_majority")
    assert {g["code"]: g["banzhaf_fraction"] for g in simple["original"]["power"]["groups"]} == {
        "EPP": "3/5",
        "SD": "1/5",
        "ALDE": "1/5",
    }
    welfare = run_counterfactual(run=run, rule="rawlsian")
    assert welfare["counterfactual"]["result"] == 2 and welfare["counterfactual"]["power"] is None


def test_veto_power_needs_a_veto_group_of_the_run(alice, record):
    run = finished_run(owner=alice, record=record, scores={"EPP": 9, "SD": 2, "ALDE": 3})
    with pytest.raises(CounterfactualError, match="veto_group: veto power needs"):
        run_counterfactual(run=run, rule="veto_power")
    with pytest.raises(CounterfactualError, match="veto_group: the veto group must"):
        run_counterfactual(run=run, rule="veto_power", veto_group="ECR")
    assert run_counterfactual(run=run, rule="veto_power", veto_group="EPP")["counterfactual"]["result"] is True
    assert run_counterfactual(run=run, rule="veto_power", veto_group="SD")["counterfactual"]["result"] is False


def test_unfinished_runs_and_unknown_choices_are_refused(alice, record):
    run = run_create(owner=alice, config=scenario_config(record))
    with pytest.raises(NotFinished):
        run_counterfactual(run=run)
    done = finished_run(owner=alice, record=record, scores={"EPP": 9, "SD": 2, "ALDE": 3})
    with pytest.raises(CounterfactualError, match="seats: choose"):
        run_counterfactual(run=done, seats="nonsense")
    with pytest.raises(CounterfactualError, match="rule: choose"):
        run_counterfactual(run=done, rule="nonsense")


def test_borda_and_schulze_rank_the_drafts_of_one_cell(alice, record):
    experiment = Experiment.objects.create(owner=alice, name="grid", spec={})
    cell = "task:1|simple_majority|{}|scripted:default|scripted|0"

    def play(strategy, scores, seed_cell=cell):
        return finished_run(
            owner=alice,
            record=record,
            scores=scores,
            experiment=experiment,
            strategy=strategy,
            cell=seed_cell.format(strategy),
        )

    parliament = play("parliament", {"EPP": 9, "SD": 2, "ALDE": 3})
    one_shot = play("one-shot", {"EPP": 4, "SD": 8, "ALDE": 8})
    greedy = play("greedy", {"EPP": 8, "SD": 1, "ALDE": 1})
    play("random", {"EPP": 9, "SD": 9, "ALDE": 9}, seed_cell="task:1|simple_majority|{}|scripted:default|scripted|1")
    assert [r.pk for r in run_competitors(run=parliament)] == [one_shot.pk, greedy.pk]
    # EPP (0.5) ranks parliament > greedy > one-shot; SD and ALDE (0.5) rank one-shot > parliament > greedy.
    # parliament beats greedy 1.0 to 0; parliament vs one-shot 0.5 to 0.5: a tie at the top.
    schulze = run_counterfactual(run=parliament, rule="schulze")
    assert schulze["original"]["ranking"]["winners"] == [f"run {parliament.pk}", f"run {one_shot.pk}"]
    assert schulze["original"]["result"] is True
    assert [d["strategy"] for d in schulze["drafts"]] == ["parliament", "one-shot", "greedy"]
    # With EPP at 0.4, one-shot wins alone.
    custom = run_counterfactual(run=parliament, rule="schulze", seats="custom", custom={"EPP": 4, "SD": 3, "ALDE": 3})
    assert custom["counterfactual"]["ranking"]["winners"] == [f"run {one_shot.pk}"]
    assert custom["counterfactual"]["result"] is False
    borda = run_counterfactual(run=parliament, rule="borda")
    # parliament: 0.5*2 + 0.5*1 = 1.5; one-shot: 0 + 0.5*2 = 1.0; greedy: 0.5*1 + 0 = 0.5
    assert borda["original"]["ranking"]["points"] == {
        f"run {parliament.pk}": 1.5,
        f"run {one_shot.pk}": 1.0,
        f"run {greedy.pk}": 0.5,
    }


def test_a_run_without_an_experiment_competes_with_nobody(alice, record):
    run = finished_run(owner=alice, record=record, scores={"EPP": 9, "SD": 2, "ALDE": 3})
    result = run_counterfactual(run=run, rule="borda")
    assert result["counterfactual"]["ranking"]["winners"] == [f"run {run.pk}"] and len(result["drafts"]) == 1


def test_cell_without_strategy():
    assert cell_without_strategy("task:1|simple_majority|parliament|m|j|0") == "task:1|simple_majority|m|j|0"
