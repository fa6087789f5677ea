"""An experiment's judged drafts as training datasets in TRL's formats (dpo, grpo, sft).

A *scenario* is (record, goal, groups, seats, veto group, judge): runs of it by different
strategies, models or seeds are drafts of one task, comparable by the goal's value G of their final
text (engine/training.py). The prompt of every row of a scenario is the one-shot drafting prompt of
that scenario (system + user, no example): the task as a drafter sees it. Each strategy's own
prompts differ (a debate, a plan, a brief), and a preference pair needs one prompt for both texts.

Files, per format, in DIR (README.md says the same to the dataset's reader):
  dpo   train.jsonl, test.jsonl, train.parquet, test.parquet: prompt, chosen, rejected (message
        lists) + score_chosen, score_rejected, margin, strategy_chosen, strategy_rejected, ...
  sft   the same files: messages (the prompt + the scenario's best draft) + value, ...
  grpo  drafts/{train,test}.{jsonl,parquet}: prompt + goal, groups, veto_group, scores, goal_value
        (any strategy's final drafts); turns/...: the negotiation strategy's turns, prompt = the
        messages the agent saw, + margin_before, margin_after, reward; hemicycle_rewards.py, the
        reward functions over those columns (engine/hemicycle_rewards.py, no Django).
The split is by record: a record's rows are all in train or all in test.
"""

import hashlib
import json
import shutil
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from deliberation.engine import hemicycle_rewards
from deliberation.engine.strategies.one_shot import draft_messages
from deliberation.engine.training import (
    JudgedDraft,
    assistant,
    draft_value,
    judged_candidates,
    preference_pairs,
    record_split,
    score_list,
)
from deliberation.runs.models import Experiment, Run, RunEvent
from deliberation.scenarios.services import engine_scenario

FORMATS = ("dpo", "grpo", "sft")
SCHEMA_VERSION = 1
RUNS_PER_BATCH = 200


@dataclass
class ScenarioRows:
    meta: dict
    prompt: list
    drafts: list[JudgedDraft] = field(default_factory=list)


def _scenario_key(run: Run) -> tuple:
    return (
        run.record_id,
        run.goal,
        tuple(run.groups),
        tuple(sorted(run.seats.items())),
        run.veto_group or None,
        run.judge,
    )


def _scenario_meta(run: Run, scenario) -> dict:
    digest = hashlib.sha256(json.dumps(_scenario_key(run), default=str).encode()).hexdigest()[:16]
    return {
        "schema_version": SCHEMA_VERSION,
        "scenario_id": digest,
        "record_id": run.record_id,
        "term": run.record.term,
        "topic": scenario.record.topic,
        "goal": run.goal,
        "groups": [
            {"group": group.code, "seat": float(run.seats[group.code]), "stance": group.stance}
            for group in scenario.groups
        ],
        "veto_group": run.veto_group or None,
        "judge": run.judge,
    }


def _finished_runs(experiment: Experiment) -> Iterator[list[Run]]:
    runs = (
        experiment.runs.filter(status=Run.Status.FINISHED, outcome__isnull=False)
        .select_related("record")
        .order_by("pk")
    )
    batch: list[Run] = []
    for run in runs.iterator(chunk_size=RUNS_PER_BATCH):
        batch.append(run)
        if len(batch) == RUNS_PER_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def experiment_scenarios(*, experiment: Experiment) -> dict[tuple, ScenarioRows]:
    """The experiment's scenarios with their judged final drafts (runs with every group scored)."""
    scenarios: dict[tuple, ScenarioRows] = {}
    for batch in _finished_runs(experiment):
        finals: dict[int, str] = {}
        drafts = RunEvent.objects.filter(run_id__in=[run.pk for run in batch], type="draft").order_by("run_id", "seq")
        for run_id, data in drafts.values_list("run_id", "data"):
            finals[run_id] = data["text"]  # the last draft is the text put to the vote
        candidates: dict[int, list[dict]] = defaultdict(list)  # the mediator's judged candidates
        mediated = [run.pk for run in batch if run.strategy == "mediator"]
        rows = RunEvent.objects.filter(run_id__in=mediated, type__in=("candidate", "ranking")).order_by("run_id", "seq")
        for run_id, type_, data in rows.values_list("run_id", "type", "data"):
            candidates[run_id].append({"type": type_, "data": data})
        for run in batch:
            scores = (run.outcome or {}).get("scores") or {}
            if run.pk not in finals or any(scores.get(code) is None for code in run.groups):
                continue
            key = _scenario_key(run)
            if key not in scenarios:
                scenario = engine_scenario(
                    record=run.record, groups=run.groups, seats=run.seats, goal=run.goal, veto_group=run.veto_group
                )
                scenarios[key] = ScenarioRows(meta=_scenario_meta(run, scenario), prompt=draft_messages(scenario, None))
            judged = [("final", finals[run.pk], scores), *judged_candidates(candidates.get(run.pk, ()), run.groups)]
            for source, text, text_scores in judged:
                value = draft_value(
                    scores=text_scores, seats=run.seats, goal=run.goal, veto_group=run.veto_group or None
                )
                scenarios[key].drafts.append(
                    JudgedDraft(
                        text=text,
                        scores=text_scores,
                        value=value,
                        run_id=run.pk,
                        strategy=run.strategy,
                        seed=run.seed,
                        source=source,
                    )
                )
    return scenarios


def dpo_rows(scenarios: dict[tuple, ScenarioRows], *, margin: float) -> list[dict]:
    rows = []
    for entry in scenarios.values():
        for chosen, rejected in preference_pairs(entry.drafts, margin=margin):
            rows.append(
                {
                    "prompt": entry.prompt,
                    "chosen": assistant(chosen.text),
                    "rejected": assistant(rejected.text),
                    "score_chosen": chosen.value,
                    "score_rejected": rejected.value,
                    "margin": chosen.value - rejected.value,
                    "strategy_chosen": chosen.strategy,
                    "strategy_rejected": rejected.strategy,
                    "run_id_chosen": chosen.run_id,
                    "run_id_rejected": rejected.run_id,
                    "source_chosen": chosen.source,
                    "source_rejected": rejected.source,
                    **entry.meta,
                }
            )
    return rows


def sft_rows(scenarios: dict[tuple, ScenarioRows]) -> list[dict]:
    rows = []
    for entry in scenarios.values():
        best = max(entry.drafts, key=lambda draft: (draft.value, -draft.run_id))
        rows.append(
            {
                "messages": [*entry.prompt, *assistant(best.text)],
                "value": best.value,
                "strategy": best.strategy,
                "run_id": best.run_id,
                "seed": best.seed,
                "source": best.source,
                **entry.meta,
            }
        )
    return rows


def grpo_draft_rows(scenarios: dict[tuple, ScenarioRows]) -> list[dict]:
    codes = lambda entry: [group["group"] for group in entry.meta["groups"]]  # noqa: E731
    return [
        {
            "prompt": entry.prompt,
            "text": draft.text,
            "scores": score_list(draft.scores, codes(entry)),
            "goal_value": draft.value,
            "strategy": draft.strategy,
            "run_id": draft.run_id,
            "seed": draft.seed,
            "source": draft.source,
            **entry.meta,
        }
        for entry in scenarios.values()
        for draft in entry.drafts
    ]


def grpo_turn_rows(*, experiment: Experiment, scenarios: dict[tuple, ScenarioRows]) -> list[dict]:
    """The negotiation strategy's turns: the messages the agent saw, its reply and its reward."""
    rows = []
    for batch in _finished_runs(experiment):
        by_id = {run.pk: run for run in batch if _scenario_key(run) in scenarios}
        turns = RunEvent.objects.filter(run_id__in=list(by_id), type="turn").order_by("run_id", "seq")
        for run_id, data in turns.values_list("run_id", "data"):
            run = by_id[run_id]
            entry = scenarios[_scenario_key(run)]
            codes = [group["group"] for group in entry.meta["groups"]]
            rows.append(
                {
                    "prompt": data["messages"],
                    "text": data["text"],
                    "turn": data["turn"],
                    "side": data["side"],
                    "speaker_groups": data["groups"],
                    "accept": data["accept"],
                    "scores_before": score_list(data["scores_before"], codes),
                    "scores_after": score_list(data["scores_after"], codes),
                    "margin_before": data["margin_before"],
                    "margin_after": float(data["margin_after"]),
                    "reward": data["reward"],
                    "strategy": run.strategy,
                    "run_id": run.pk,
                    "seed": run.seed,
                    **entry.meta,
                }
            )
    return rows


def _write_split(folder: Path, rows: list[dict], train_records: set[int]) -> dict[str, int]:
    folder.mkdir(parents=True, exist_ok=True)
    splits = {
        "train": [row for row in rows if row["record_id"] in train_records],
        "test": [row for row in rows if row["record_id"] not in train_records],
    }
    schema = pa.Table.from_pylist(rows).schema if rows else pa.schema([])  # one schema for both splits
    for name, split in splits.items():
        with open(folder / f"{name}.jsonl", "w", encoding="utf-8") as out:
            for row in split:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        pq.write_table(pa.Table.from_pylist(split, schema=schema), folder / f"{name}.parquet")
    return {name: len(split) for name, split in splits.items()}


def training_export(
    *, experiment: Experiment, format: str, out: Path, train: float = 0.9, seed: int = 0, margin: float = 0.0
) -> dict:
    """Write the experiment's `format` dataset into `out` (made if missing); returns the counts."""
    if format not in FORMATS:
        raise ValueError(f"format: choose from {', '.join(FORMATS)}")
    scenarios = experiment_scenarios(experiment=experiment)
    train_records, test_records = record_split(
        (entry.meta["record_id"] for entry in scenarios.values()), train=train, seed=seed
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if format == "dpo":
        counts = {"default": _write_split(out, dpo_rows(scenarios, margin=margin), train_records)}
    elif format == "sft":
        counts = {"default": _write_split(out, sft_rows(scenarios), train_records)}
    else:
        counts = {
            "drafts": _write_split(out / "drafts", grpo_draft_rows(scenarios), train_records),
            "turns": _write_split(
                out / "turns", grpo_turn_rows(experiment=experiment, scenarios=scenarios), train_records
            ),
        }
        shutil.copyfile(hemicycle_rewards.__file__, out / "hemicycle_rewards.py")
    summary = {
        "format": format,
        "counts": counts,
        "scenarios": len(scenarios),
        "drafts": sum(len(entry.drafts) for entry in scenarios.values()),
        "train_records": sorted(train_records),
        "test_records": sorted(test_records),
        "train": train,
        "seed": seed,
        "margin": margin,
    }
    (out / "README.md").write_text(dataset_card(experiment=experiment, summary=summary), encoding="utf-8")
    return summary


def dataset_card(*, experiment: Experiment, summary: dict) -> str:
    from deliberation.calibration.selectors import calibrations_for_experiment

    spec = experiment.spec
    calibrations = calibrations_for_experiment(experiment=experiment)["by_judge"]
    calibrated = [
        f"- {judge}: calibration {c.pk} on record set {c.record_set_id} ({c.judge_model or 'its own model'})"
        for judge in spec.get("judges", [])
        for c in calibrations.get(judge, [])
    ] or ["- none of the experiment's judges was calibrated on its record set"]
    record_sets = sorted(set(experiment.runs.values_list("record__record_set__name", flat=True)))
    files = {
        "dpo": "train/test .jsonl and .parquet: prompt, chosen, rejected (conversational message lists, "
        "TRL's preference type with an explicit prompt) + score_chosen, score_rejected, margin, "
        "strategy_chosen, strategy_rejected, run_id_chosen, run_id_rejected and the scenario columns. "
        "Every pair of a scenario's drafts whose goal values G differ by more than the margin; ties dropped.",
        "sft": "train/test .jsonl and .parquet: messages (the prompt and the scenario's best draft by G) "
        "+ value, strategy, run_id, seed and the scenario columns.",
        "grpo": "drafts/: prompt (TRL's prompt-only type) + text, scores, goal_value and the scenario columns "
        "(goal, groups, veto_group) that reach a reward function as keyword arguments; turns/: the "
        "negotiation strategy's turns, prompt = the messages the agent saw, + text, margin_before, "
        "margin_after, reward (its AI-feedback reward G_after - G_before). hemicycle_rewards.py: "
        "stored_goal_reward, negotiation_turn_reward and make_goal_reward(judge), no Django.",
    }[summary["format"]]
    counts = "\n".join(
        f"- {subset}: {split['train']} train rows, {split['test']} test rows"
        for subset, split in summary["counts"].items()
    )
    return f"""# Hemicycle training data: {experiment.name} ({summary['format']})

Exported from the Hemicycle experiment "{experiment.name}" (id {experiment.pk}) by
`python manage.py export_training --experiment "{experiment.name}" --format {summary['format']}
--split {summary['train']} --seed {summary['seed']} --margin {summary['margin']}`.

## Files
{files}

Scenario columns on every row: scenario_id, record_id, term, topic, goal, groups (list of
{{group, seat, stance}}), veto_group, judge, schema_version. Load with
`datasets.load_dataset("json", data_files={{"train": "train.jsonl", "test": "test.jsonl"}})`
(or the .parquet files).

## The grid
- goals: {', '.join(spec.get('goals', []))}
- strategies: {', '.join(spec.get('strategies', []))}
- drafting models: {', '.join(spec.get('models', []))}
- judges: {', '.join(spec.get('judges', []))}
- seeds: {', '.join(str(seed) for seed in spec.get('seeds', []))}

## Judge calibration
{chr(10).join(calibrated)}

## Value of a text
G, the goal margin over the judge's scores (0..9 per group): voting goals u - 5 (simple majority;
veto power min(u - 5, u_veto - 6)) or u - 20/3 (two-thirds), u the seat-weighted support, so a text
that passes beats one that fails, then higher support wins; Rawlsian the lowest group score,
utilitarian the mean. The prompt is the one-shot drafting prompt of the scenario (the same for
every strategy's draft of it).

## Counts
- {summary['scenarios']} scenarios, {summary['drafts']} judged drafts
{counts}

## Split
By record, never by row: {len(summary['train_records'])} records in train, {len(summary['test_records'])} in
test (fraction {summary['train']}, seed {summary['seed']}); no record is in both.
Test records: {', '.join(map(str, summary['test_records'])) or 'none'}.

## Licence of the records
Record sets: {', '.join(record_sets) or 'none'}. The EuroCon records (the bundled sample and
EuroCon imports) are under the MIT licence (see the data's LICENSE); an uploaded record set is under
its uploader's terms. The drafts are model outputs of the models named above, under those models'
terms.
"""


def training_zip(
    *, experiment: Experiment, format: str, train: float = 0.9, seed: int = 0, margin: float = 0.0
) -> Iterator[bytes]:
    """The `format` dataset's folder (training_export) as a zip, in pieces to stream. The files are
    written to a temporary folder first (Parquet needs its footer), then zipped into a spooled file
    read back in 1 MiB pieces; an unknown format or split is refused (ValueError) before any piece."""
    import tempfile
    import zipfile

    if format not in FORMATS:
        raise ValueError(f"format: choose from {', '.join(FORMATS)}")
    record_split([], train=train, seed=seed)  # refuses a bad fraction now, not mid-stream
    if margin < 0:
        raise ValueError("margin must be >= 0")

    def pieces() -> Iterator[bytes]:
        with tempfile.TemporaryDirectory() as folder, tempfile.SpooledTemporaryFile(max_size=2**24) as spool:
            root = Path(folder)
            training_export(experiment=experiment, format=format, out=root, train=train, seed=seed, margin=margin)
            with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(root.rglob("*")):
                    if path.is_file():
                        archive.write(path, path.relative_to(root).as_posix())
            spool.seek(0)
            while piece := spool.read(2**20):
                yield piece

    return pieces()
