"""Per-group scores of finished runs as rows (RunGroupScore), for the dashboards' per-group views.

A run's outcome holds each group's judge score (outcome["scores"], group code -> 0..9); the
dashboards compare it with the group's seat share in the run and with its real vote on the run's
record. Unnesting that JSON for every view cost about 1.5 s at 100,000 runs
(bench/bench_dashboard.py), so a finishing run writes its groups as rows once
(runs.services.run_finish calls group_scores_write) and the views are GROUP BYs over them.

The rows are written just before the run's status turns finished, in the same update path: a
dashboard cached between the two (keyed on the count of finished runs) is rebuilt once the status
changes, whereas rows written after the status could miss a dashboard built in between forever.
Writing is idempotent (a retried finish replaces the run's rows).
"""

from collections.abc import Iterable, Mapping

from deliberation.records.models import Stance
from deliberation.runs.models import Run, RunGroupScore

BATCH = 2000


def group_score_rows(*, run, outcome: Mapping | None, real: Mapping[str, int]) -> list[dict]:
    """The rows of one run (any object with pk, experiment_id, strategy and seats): one per group
    the judge scored; `real` maps the group codes to their real vote on the run's record."""
    scores = (outcome or {}).get("scores") or {}
    seats = run.seats or {}
    rows = []
    for code, score in scores.items():
        if score is None:
            continue
        share = seats.get(code)
        rows.append({
            "run_id": run.pk, "experiment_id": run.experiment_id, "strategy": run.strategy, "group": code,
            "score": float(score), "seat_share": None if share is None else float(share),
            "real_choice": real.get(code),
        })
    return rows


def real_choices(*, record_ids: Iterable[int], stance_model=Stance, using: str = "default") -> dict[int, dict[str, int]]:
    """Each record's real votes: record id -> group code -> Stance.real_choice."""
    out: dict[int, dict[str, int]] = {}
    rows = stance_model.objects.using(using).filter(record_id__in=set(record_ids)).values_list(
        "record_id", "group__code", "real_choice"
    )
    for record_id, code, choice in rows:
        out.setdefault(record_id, {})[code] = choice
    return out


def group_scores_write(*, run: Run, outcome: Mapping | None) -> None:
    """Store the finishing run's per-group scores, replacing any it has: one upsert on (run, group),
    since a run's groups never change (one statement instead of a transaction of four)."""
    real = real_choices(record_ids=[run.record_id]).get(run.record_id, {})
    rows = group_score_rows(run=run, outcome=outcome, real=real)
    RunGroupScore.objects.bulk_create(
        [RunGroupScore(**row) for row in rows], update_conflicts=True, unique_fields=["run", "group"],
        update_fields=["experiment", "strategy", "score", "seat_share", "real_choice"],
    )


def group_scores_backfill(*, run_model=Run, score_model=RunGroupScore, stance_model=Stance,
                          using: str = "default", batch: int = BATCH) -> int:
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
    chunk: list = []

    def flush() -> int:
        real = real_choices(record_ids={run.record_id for run in chunk}, stance_model=stance_model, using=using)
        rows = [
            score_model(**row)
            for run in chunk
            for row in group_score_rows(run=run, outcome=run.outcome, real=real.get(run.record_id, {}))
        ]
        score_model.objects.using(using).bulk_create(rows, batch_size=batch, ignore_conflicts=True)
        chunk.clear()
        return len(rows)

    for run in runs.iterator(chunk_size=batch):
        chunk.append(run)
        if len(chunk) == batch:
            written += flush()
    if chunk:
        written += flush()
    return written
