"""Per-group scores of finished runs as rows (RunGroupScore), for the dashboards' per-group views.

A run's outcome holds each group's judge score (outcome["scores"], group code -> 0..9); the
dashboards compare it with the group's seat share in the run and with its real vote on the run's
record. Unnesting that JSON for every view cost about 1.5 s at 100,000 runs
(bench/bench_dashboard.py), so a finishing run writes its groups as rows once
(runs.services.run_finish, with group_score_objects) and the views are GROUP BYs over them.

The rows are written with the run's finish, in the same statement on PostgreSQL, else just before
the status turns finished: a
dashboard cached between the two (keyed on the count of finished runs) is rebuilt once the status
changes, whereas rows written after the status could miss a dashboard built in between forever.
Writing is idempotent (a retried finish replaces the run's rows).
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice

from django.db import connections, router

from deliberation.engine.rewards import REWARD_EVENT_TYPES, MoralReward, moral_rewards
from deliberation.records.models import Stance
from deliberation.runs.hotpath import insert_sql
from deliberation.runs.models import Run, RunEvent, RunGroupScore

BATCH = 2000


def group_score_rows(
    *, run, outcome: Mapping | None, real: Mapping[str, int], rewards: Mapping[str, MoralReward]
) -> list[dict]:
    """The rows of one run (any object with pk, experiment_id, strategy and seats): one per group
    the judge scored; `real` maps the group codes to their real vote on the run's record, `rewards`
    to their moral rewards (engine/rewards.py)."""
    scores = (outcome or {}).get("scores") or {}
    seats = run.seats or {}
    rows = []
    for code, score in scores.items():
        if score is None:
            continue
        share = seats.get(code)
        reward = rewards.get(code)
        rows.append(
            {
                "run_id": run.pk,
                "experiment_id": run.experiment_id,
                "strategy": run.strategy,
                "group": code,
                "score": float(score),
                "seat_share": None if share is None else float(share),
                "real_choice": real.get(code),
                "reward_deontological": reward.deontological if reward else None,
                "reward_utilitarian": reward.utilitarian if reward else None,
            }
        )
    return rows


def real_choices(
    *, record_ids: Iterable[int], stance_model=Stance, using: str = "default"
) -> dict[int, dict[str, int]]:
    """Each record's real votes: record id -> group code -> Stance.real_choice."""
    out: dict[int, dict[str, int]] = {}
    rows = (
        stance_model.objects.using(using)
        .filter(record_id__in=set(record_ids))
        .values_list("record_id", "group__code", "real_choice")
    )
    for record_id, code, choice in rows:
        out.setdefault(record_id, {})[code] = choice
    return out


def run_moral_rewards(
    *, run_ids: Iterable[int], event_model=RunEvent, using: str = "default"
) -> dict[int, dict[str, MoralReward]]:
    """Each run's moral rewards (run id -> group code -> MoralReward), from the stored events
    moral_rewards reads, in order."""
    events: dict[int, list[dict]] = {run_id: [] for run_id in run_ids}
    rows = event_model.objects.using(using).filter(run_id__in=list(events), type__in=REWARD_EVENT_TYPES)
    for run_id, type_, data in rows.order_by("run_id", "seq").values_list("run_id", "type", "data"):
        events[run_id].append({"type": type_, "data": data})
    return {run_id: moral_rewards(run_events) for run_id, run_events in events.items()}


# What a finish that finds its run's rows (a retried finish) sets again: all but the key.
SCORE_UPDATE_FIELDS = (
    "experiment",
    "strategy",
    "score",
    "seat_share",
    "real_choice",
    "reward_deontological",
    "reward_utilitarian",
)
SCORE_CONFLICT = ("run", "group")


def group_score_objects(
    *, run: Run, outcome: Mapping | None, real: Mapping[str, int] | None = None, events: Sequence[Mapping] | None = None
) -> list[RunGroupScore]:
    """The finishing run's per-group rows, unsaved. What the finishing run holds is not read
    again: `real`, the groups' real votes (its scenario has them), and `events`, its events in
    order (for the rewards); either None: read here."""
    if real is None:
        real = real_choices(record_ids=[run.record_id]).get(run.record_id, {})
    if events is None:
        rewards = run_moral_rewards(run_ids=[run.pk])[run.pk]
    else:
        rewards = moral_rewards(event for event in events if event["type"] in REWARD_EVENT_TYPES)
    rows = group_score_rows(run=run, outcome=outcome, real=real, rewards=rewards)
    return [RunGroupScore(**row) for row in rows]


def group_scores_write(
    *, run: Run, outcome: Mapping | None, real: Mapping[str, int] | None = None, events: Sequence[Mapping] | None = None
) -> None:
    """Store the finishing run's per-group scores, replacing any it has: one upsert on (run, group),
    since a run's groups never change (one statement instead of a transaction of four); a finish
    writes them with the run in one statement (runs.services.run_finish)."""
    objs = group_score_objects(run=run, outcome=outcome, real=real, events=events)
    if objs:
        sql, params = insert_sql(objs, conflict=SCORE_CONFLICT, update=SCORE_UPDATE_FIELDS)
        with connections[router.db_for_write(RunGroupScore)].cursor() as cursor:
            cursor.execute(sql, params)


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def group_scores_backfill(
    *,
    run_model=Run,
    score_model=RunGroupScore,
    stance_model=Stance,
    event_model=RunEvent,
    using: str = "default",
    batch: int = BATCH,
) -> int:
    """Rows for every finished run that has none (a migration passes its historical models).
    Returns how many rows were written."""
    runs = (
        run_model.objects.using(using)
        .filter(status="finished", outcome__isnull=False)
        .exclude(pk__in=score_model.objects.using(using).values("run_id"))
        .only("pk", "experiment_id", "strategy", "seats", "record_id", "outcome")
        .order_by("pk")
    )
    written = 0
    for chunk in _chunks(runs.iterator(chunk_size=batch), batch):
        real = real_choices(record_ids={run.record_id for run in chunk}, stance_model=stance_model, using=using)
        rewards = run_moral_rewards(run_ids=[run.pk for run in chunk], event_model=event_model, using=using)
        # A historical model (an older migration's) may lack the later columns: it gets what it has.
        known = {field.attname for field in score_model._meta.concrete_fields}
        rows = [
            score_model(**{key: value for key, value in row.items() if key in known})
            for run in chunk
            for row in group_score_rows(
                run=run, outcome=run.outcome, real=real.get(run.record_id, {}), rewards=rewards[run.pk]
            )
        ]
        score_model.objects.using(using).bulk_create(rows, batch_size=batch, ignore_conflicts=True)
        written += len(rows)
    return written


def group_rewards_backfill(
    *, score_model=RunGroupScore, event_model=RunEvent, using: str = "default", batch: int = 500
) -> int:
    """Recompute the moral rewards of every stored per-group row from its run's events (a
    migration passes its historical models; `manage.py rewards_backfill` runs it after a change of
    the rules). Returns how many rows were updated."""
    run_ids = score_model.objects.using(using).order_by("run_id").values_list("run_id", flat=True).distinct()
    updated = 0
    for chunk in _chunks(run_ids.iterator(chunk_size=batch), batch):
        rewards = run_moral_rewards(run_ids=chunk, event_model=event_model, using=using)
        rows = list(score_model.objects.using(using).filter(run_id__in=chunk))
        for row in rows:
            reward = rewards[row.run_id].get(row.group)
            row.reward_deontological = reward.deontological if reward else None
            row.reward_utilitarian = reward.utilitarian if reward else None
        score_model.objects.using(using).bulk_update(
            rows, ["reward_deontological", "reward_utilitarian"], batch_size=batch
        )
        updated += len(rows)
    return updated
