"""Training exports (runs/training.py): an experiment on the sample records with the scripted model
and several strategies, exported as dpo, grpo and sft, read back with pandas and `datasets`."""

import importlib
import sys
from pathlib import Path

import datasets
import pandas as pd
import pytest
from django.core.management import call_command

from deliberation.engine.goals import goal_margin
from deliberation.runs.models import Run
from tests.factories import experiment_options

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLE = Path(__file__).resolve().parents[3] / "fixtures" / "sample_records"
SET = "Sample EP issues"
MESSAGE_LIST = {"role", "content"}


@pytest.fixture
def played(play_sample_experiment):
    return play_sample_experiment(
        "train",
        *experiment_options(
            parties=2,
            sample=4,
            goals=["simple_majority", "rawlsian"],
            strategies=["one-shot", "greedy", "random", "negotiation"],
            seeds=[0, 1],
        ),
    )


def _export(fmt: str, tmp_path: Path, **options) -> Path:
    out = tmp_path / fmt
    call_command(
        "export_training",
        "--experiment",
        "train",
        "--format",
        fmt,
        "--out",
        str(out),
        *[arg for key, value in options.items() for arg in (f"--{key}", str(value))],
        verbosity=0,
    )
    return out


def _read(folder: Path) -> dict[str, pd.DataFrame]:
    """Each split through pandas (JSONL and Parquet, the same rows) and through `datasets`."""
    frames = {}
    loaded = datasets.load_dataset(
        "json",
        data_files={s: str(folder / f"{s}.jsonl") for s in ("train", "test") if (folder / f"{s}.jsonl").stat().st_size},
    )
    parquet = datasets.load_dataset("parquet", data_files={s: str(folder / f"{s}.parquet") for s in ("train", "test")})
    for split in ("train", "test"):
        jsonl = (
            pd.read_json(folder / f"{split}.jsonl", lines=True)
            if (folder / f"{split}.jsonl").stat().st_size
            else pd.DataFrame()
        )
        table = pd.read_parquet(folder / f"{split}.parquet")
        assert len(jsonl) == len(table) == parquet[split].num_rows
        if len(table):
            assert list(jsonl.columns) == list(table.columns) == parquet[split].column_names
            assert loaded[split].num_rows == len(table)
        frames[split] = table
    return frames


def _is_messages(value, roles=None) -> bool:
    messages = list(value)
    return (
        bool(messages)
        and all(set(m) == MESSAGE_LIST for m in messages)
        and (roles is None or [m["role"] for m in messages] == roles)
    )


def test_dpo_pairs_read_back_in_trl_columns_chosen_beats_rejected_and_records_never_cross(played, tmp_path):
    frames = _read(_export("dpo", tmp_path, split=0.5, seed=3))
    both = pd.concat(frames.values())
    assert len(both) > 0 and len(frames["train"]) > 0
    assert {"prompt", "chosen", "rejected"} <= set(both.columns)
    assert all(_is_messages(p, ["system", "user"]) for p in both["prompt"])
    assert all(
        _is_messages(c, ["assistant"]) and _is_messages(r, ["assistant"])
        for c, r in zip(both["chosen"], both["rejected"])
    )
    assert (both["score_chosen"] > both["score_rejected"]).all()  # ties dropped
    assert not set(frames["train"]["record_id"]) & set(frames["test"]["record_id"])
    # The chosen text's value is the goal margin of its run's judged scores.
    row = both.iloc[0]
    run = Run.objects.get(pk=row["run_id_chosen"])
    assert row["score_chosen"] == pytest.approx(
        goal_margin(run.outcome["scores"], seats=run.seats, goal=run.goal, veto_group=run.veto_group or None)
    )
    card = (tmp_path / "dpo" / "README.md").read_text()
    assert "train" in card and "MIT" in card and "scripted" in card

    wide = pd.concat(_read(_export("dpo", tmp_path / "wide", margin=1.0)).values())
    assert len(wide) <= len(both) and (wide["margin"] > 1.0).all()


def test_sft_holds_the_best_draft_of_each_scenario(played, tmp_path):
    frames = _read(_export("sft", tmp_path))
    both = pd.concat(frames.values())
    assert both["scenario_id"].is_unique
    assert all(_is_messages(m, ["system", "user", "assistant"]) for m in both["messages"])
    for _, row in both.iterrows():
        others = Run.objects.filter(
            experiment=played, record_id=row["record_id"], goal=row["goal"], groups=[g["group"] for g in row["groups"]]
        )
        best = max(
            goal_margin(r.outcome["scores"], seats=r.seats, goal=r.goal, veto_group=r.veto_group or None)
            for r in others
        )
        assert row["value"] == pytest.approx(best)


def test_grpo_prompts_with_reward_columns_and_the_standalone_reward_module_agrees_with_the_lab(played, tmp_path):
    out = _export("grpo", tmp_path)
    drafts = pd.concat(_read(out / "drafts").values())
    turns = pd.concat(_read(out / "turns").values())
    assert len(drafts) == Run.objects.filter(experiment=played, status="finished").count()
    assert len(turns) > 0 and set(turns["strategy"]) == {"negotiation"}
    assert all(_is_messages(p) for p in turns["prompt"])
    # The copied module imports without Django or the package (a fresh import from the folder).
    sys.path.insert(0, str(out))
    try:
        sys.modules.pop("hemicycle_rewards", None)
        module = importlib.import_module("hemicycle_rewards")
    finally:
        sys.path.remove(str(out))
        sys.modules.pop("hemicycle_rewards", None)
    assert "deliberation" not in module.__dict__ and module.__file__.startswith(str(out))
    columns = {name: list(drafts[name]) for name in ("goal", "groups", "veto_group", "scores")}
    rewards = module.stored_goal_reward(list(drafts["text"]), **columns, prompts=list(drafts["prompt"]))
    assert rewards == pytest.approx(list(drafts["goal_value"]))
    turn_rewards = module.negotiation_turn_reward(
        list(turns["text"]), margin_before=list(turns["margin_before"]), margin_after=list(turns["margin_after"])
    )
    stored = [0.0 if pd.isna(value) else value for value in turns["reward"]]
    assert turn_rewards == pytest.approx(stored)
    judged = module.make_goal_reward(lambda text, group, stance: 9.0)(
        ["t"], goal=["rawlsian"], groups=[[{"group": "EPP", "seat": 1.0}]], veto_group=[None]
    )
    assert judged == [9.0]


def test_an_unknown_experiment_or_split_is_refused(played, tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no experiment"):
        call_command("export_training", "--experiment", "nope", "--format", "dpo", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="train fraction"):
        call_command(
            "export_training", "--experiment", "train", "--format", "dpo", "--out", str(tmp_path), "--split", "0"
        )


def test_the_api_and_the_experiment_page_serve_the_dataset_as_a_zip_to_the_owner_only(played, client, tmp_path):
    import io
    import zipfile

    from django.urls import reverse

    from deliberation.api.services import api_token_create
    from tests.factories import make_user

    token = api_token_create(user=played.owner)[1]
    url = f"/api/v1/experiments/{played.pk}/training.zip"
    response = client.get(f"{url}?format=dpo&split=0.5&seed=3", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).extractall(tmp_path / "zip")
    assert {"README.md", "train.jsonl", "test.parquet"} <= {p.name for p in (tmp_path / "zip").iterdir()}
    via_command = _export("dpo", tmp_path, split=0.5, seed=3)
    assert (tmp_path / "zip" / "train.jsonl").read_text() == (via_command / "train.jsonl").read_text()
    assert client.get(f"{url}?format=xlsx", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 400
    bob = api_token_create(user=make_user("bob"))[1]
    assert client.get(f"{url}?format=dpo", HTTP_AUTHORIZATION=f"Bearer {bob}").status_code == 404
    client.force_login(played.owner)
    page = client.get(reverse("experiment-dashboard", args=[played.pk])).content.decode()
    assert f'{url}?format=grpo' in page


def test_the_preference_oracle_scores_both_texts_with_the_runs_judge_and_orders_them_by_the_goal(played, client):
    from deliberation.api.services import api_token_create
    from deliberation.runs.models import RunEvent

    def final(run: Run) -> str:
        return RunEvent.objects.filter(run=run, type="draft").order_by("-seq").values_list("data", flat=True)[0]["text"]

    def value(run: Run) -> float:
        return goal_margin(run.outcome["scores"], seats=run.seats, goal=run.goal, veto_group=run.veto_group or None)

    runs = list(
        Run.objects.filter(experiment=played, goal="simple_majority", strategy__in=["one-shot", "greedy", "random"])
    )
    first = runs[0]
    same = [
        run for run in runs if (run.record_id, run.groups, run.seats) == (first.record_id, first.groups, first.seats)
    ]
    other = next((run for run in same if value(run) != value(first)), same[-1])
    token = api_token_create(user=played.owner)[1]
    response = client.post(
        f"/api/v1/runs/{first.pk}/preference",
        {"text_a": final(first), "text_b": final(other)},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    # The run's judge with the run's judge seed: each run's own final text gets the scores it got.
    assert body["value_a"] == pytest.approx(value(first)) and body["value_b"] == pytest.approx(value(other))
    assert body["scores_a"] == pytest.approx({code: float(score) for code, score in first.outcome["scores"].items()})
    expected = None if value(first) == value(other) else ("a" if value(first) > value(other) else "b")
    assert body["preferred"] == expected
    assert (body["p_a"] > 0.5) == (expected == "a") and (body["p_a"] < 0.5) == (expected == "b")
    empty = client.post(
        f"/api/v1/runs/{first.pk}/preference",
        {"text_a": " ", "text_b": "x"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert empty.status_code == 400


def test_a_mediator_ranked_by_the_judge_adds_its_candidates_as_pairs(play_sample_experiment, tmp_path):
    play_sample_experiment("train", *experiment_options(parties=2, strategies="mediator"), "--param", "ranking=judge")
    drafts = pd.concat(_read(_export("grpo", tmp_path) / "drafts").values())
    candidates = drafts[drafts["source"].str.startswith("candidate")]
    assert len(candidates) > 0 and len(drafts) == len(candidates) + 2  # two runs' final texts
    row = candidates.iloc[0]
    module_value = goal_margin(
        {s["group"]: s["score"] for s in row["scores"]},
        seats={g["group"]: g["seat"] for g in row["groups"]},
        goal=row["goal"],
        veto_group=row["veto_group"],
    )
    assert row["goal_value"] == pytest.approx(module_value)
    pairs = pd.concat(_read(_export("dpo", tmp_path / "dpo")).values())
    sources = set(pairs["source_chosen"]) | set(pairs["source_rejected"])
    assert any(source.startswith("candidate") for source in sources)
