"""An experiment as tidy tables (one per entity), in CSV, Parquet and JSON, with a data dictionary.

Tables: `experiments` (one row), `runs` (one row per run), `group_scores` (one row per run x
participating group), `events` (one row per stored run event). Every table is declared once in
TABLES (column, type, meaning); the rows, the Parquet schemas and the data dictionary shipped in
the zip all come from that declaration, so the dictionary covers every column by construction.

The zip streams: rows are read from the database in batches and written into the archive as they
come, and each piece of the archive is handed on (a StreamingHttpResponse, a file) as soon as it
is written, so neither the tables nor the zip are ever whole in memory.

Files read as they are: CSV has a header, ISO 8601 UTC timestamps, `true`/`false` booleans and
empty cells for missing values (pandas.read_csv and R's read.csv both read them); list columns
are `;`-joined codes; the only JSON in a CSV cell is in the columns named `*_json`, documented as
such. Parquet keeps the declared types (timestamps in UTC, nullable integers and booleans).
"""

import csv
import io
import json
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice

import pyarrow as pa
import pyarrow.parquet as pq
from django.db.models import QuerySet

from deliberation.records.models import Stance
from deliberation.runs.models import Experiment, Run, RunEvent, RunGroupScore

FORMATS = ("csv", "parquet", "json")

README = """Hemicycle experiment export: one table per entity, described column by column in
data_dictionary.csv (table, column, type, meaning).

  experiments   one row: the grid, its estimate and status
  runs          one row per run: cell, scenario, outcome, cost
  group_scores  one row per run x group: seat share, score 0..9, real vote, moral rewards
  events        one row per stored run event (data_json holds the event's data)

Join on experiment_id and run_id. Timestamps are ISO 8601 in UTC; empty cells are missing
values; list columns are ';'-joined; only the *_json columns hold JSON.

  pandas:  pd.read_csv("runs.csv", parse_dates=["created_at", "started_at", "finished_at"])
           pd.read_parquet("runs.parquet")
  R:       read.csv("runs.csv")   or   arrow::read_parquet("runs.parquet")
"""

RUN_README = """Hemicycle run export: one run as tables, described column by column in
data_dictionary.csv (table, column, type, meaning).

  runs          one row: the scenario, outcome and cost
  group_scores  one row per group: seat share, score 0..9, real vote, moral rewards
  events        one row per stored event, in order (data_json holds the event's data; in a
                classroom session students' speeches, amendments and votes carry by=students)

Join on run_id. Timestamps are ISO 8601 in UTC; empty cells are missing values; list columns
are ';'-joined; only the *_json columns hold JSON.

  pandas:  pd.read_csv("events.csv", parse_dates=["at"])
  R:       read.csv("events.csv")
"""

ARROW_TYPES = {
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a key of ARROW_TYPES
    meaning: str


def _columns(*specs: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


TABLES: dict[str, tuple[Column, ...]] = {
    "experiments": _columns(
        ("experiment_id", "integer", "The experiment's id."),
        ("name", "string", "The experiment's name (unique per owner)."),
        ("owner", "string", "Username of the experiment's owner."),
        ("status", "string", "draft, running, paused, finished, cancelled or capped."),
        ("source_kind", "string", "task (a record set's benchmark tasks) or scenario (saved scenarios)."),
        ("record_set", "string", "The record set of the benchmark tasks; empty for saved scenarios."),
        ("topic", "string", "The topic the tasks were filtered on; empty when none."),
        ("sources", "integer", "Benchmark tasks or saved scenarios in the grid."),
        ("goals", "string", "The grid's goals, ';'-joined."),
        ("strategies", "string", "The grid's strategies, ';'-joined."),
        ("models", "string", "The grid's drafting model strings, ';'-joined."),
        ("judges", "string", "The grid's judges, ';'-joined."),
        ("seeds", "string", "The grid's seeds, ';'-joined."),
        ("call_cap", "integer", "At most this many uncached model steps; empty when uncapped."),
        ("runs_estimated", "integer", "Cells of the grid (runs it plays when complete)."),
        ("steps_estimated", "integer", "Estimated model steps over the grid (engine/costs.py)."),
        ("completion_tokens_estimated", "integer", "Estimated completion tokens over the grid."),
        ("params_json", "string", "JSON object: strategy -> its parameters (e.g. parliament rounds)."),
        ("created_at", "timestamp", "When the experiment was created (ISO 8601, UTC)."),
        ("started_at", "timestamp", "When it was first started; empty for a draft."),
        ("finished_at", "timestamp", "When it finished, was capped or cancelled; empty otherwise."),
    ),
    "runs": _columns(
        ("run_id", "integer", "The run's id."),
        ("experiment_id", "integer", "The experiment the run belongs to."),
        ("cell", "string", "The grid cell: source|goal|strategy|model|judge|seed."),
        ("status", "string", "queued, running, paused, finished, failed or stopped."),
        ("record_id", "integer", "The EP record (issue) played."),
        ("record_title", "string", "The record's title."),
        ("term", "string", "The record's parliamentary term (e.g. 7th)."),
        ("task_id", "integer", "The benchmark task played; empty for a saved scenario's run."),
        ("party_count", "integer", "Participating groups."),
        ("groups", "string", "Participating group codes in the scenario's order, ';'-joined."),
        ("veto_group", "string", "The group holding a veto; empty when none."),
        ("goal", "string", "The scenario's goal (engine/goals.py key)."),
        ("strategy", "string", "The consensus strategy."),
        ("model", "string", "The drafting model string."),
        ("judge", "string", "The judge (llm, real-votes, scripted)."),
        ("judge_model", "string", "The judge's model when it differs from the drafting model; else empty."),
        ("seed", "integer", "The run's seed (derived from the cell's seed for a task)."),
        ("weighted_total", "float", "u: the sum over groups of seat share x score (0..9); empty until finished."),
        ("goal_passed", "boolean", "Whether a voting goal passed; empty for welfare goals or unfinished runs."),
        ("goal_score", "float", "A welfare goal's score; empty for voting goals or unfinished runs."),
        (
            "outcome_goals_json",
            "string",
            "JSON object: every goal key -> pass (true/false) or score (number), "
            "for the same final text; empty until finished.",
        ),
        ("fallback_groups", "string", "Groups whose score is the judge's fallback, ';'-joined."),
        ("prompt_tokens", "integer", "Prompt tokens spent (cached completions included)."),
        ("completion_tokens", "integer", "Completion tokens spent (cached completions included)."),
        ("model_seconds", "float", "Seconds spent in model calls."),
        ("uncached_steps", "integer", "Model steps the completion cache did not answer."),
        ("wall_seconds", "float", "finished_at - started_at in seconds; empty until finished."),
        ("error", "string", "Why the run failed; empty otherwise."),
        ("created_at", "timestamp", "When the run was created (ISO 8601, UTC)."),
        ("started_at", "timestamp", "When the run started stepping; empty if it never did."),
        ("finished_at", "timestamp", "When the run settled; empty otherwise."),
    ),
    "group_scores": _columns(
        ("run_id", "integer", "The run."),
        ("experiment_id", "integer", "The experiment the run belongs to."),
        ("group", "string", "The group's code."),
        ("position", "integer", "The group's place in the scenario's order, from 1."),
        ("seat_share", "float", "The group's seat share in the scenario, 0..1 (a run's shares sum to 1)."),
        ("score", "integer", "The group's support for the final text, 0..9; empty until the run finished."),
        ("fallback", "boolean", "Whether the score is the judge's fallback (it could not read a score)."),
        ("is_veto_group", "boolean", "Whether the group holds the scenario's veto."),
        ("real_score", "float", "Share of the group's MEPs that voted for the adopted text, 0..1."),
        ("real_choice", "integer", "The real vote as a choice 0..9: min(9, floor(10 x real_score))."),
        (
            "reward_deontological",
            "float",
            "Moral reward (engine/rewards.py): -1 the group voted against a final "
            "text it had endorsed (its amendment accepted, a negotiated text agreed, "
            "or its first choice of the mediator's last round), +1 it endorsed it and "
            "did not vote against, 0 it endorsed nothing; empty until finished.",
        ),
        (
            "reward_utilitarian",
            "float",
            "Moral reward (engine/rewards.py): the mean judged support of the final "
            "text over the run's groups, 0..9; empty until finished.",
        ),
    ),
    "events": _columns(
        ("run_id", "integer", "The run."),
        ("experiment_id", "integer", "The experiment the run belongs to."),
        ("seq", "integer", "The event's sequence number in its run, from 1."),
        (
            "type",
            "string",
            "The event type; docs/events.md documents the data of each (JSON Schema: /api/v1/events/schema).",
        ),
        ("at", "timestamp", "When the event was stored (ISO 8601, UTC)."),
        ("prompt_tokens", "integer", "Prompt tokens of the event's model call; empty when it made none."),
        ("completion_tokens", "integer", "Completion tokens of the event's model call; empty when it made none."),
        ("cached", "boolean", "Whether the completion cache answered the call; empty when it made none."),
        ("data_json", "string", "JSON object: the event's data as stored, usage included."),
    ),
}

DICTIONARY_COLUMNS = _columns(
    ("table", "string", "The table (file name without extension)."),
    ("column", "string", "The column's name."),
    ("type", "string", "integer, float, boolean, string or timestamp (ISO 8601, UTC)."),
    ("meaning", "string", "What the column holds."),
)


def data_dictionary() -> list[dict]:
    return [
        {"table": table, "column": column.name, "type": column.type, "meaning": column.meaning}
        for table, columns in TABLES.items()
        for column in columns
    ]


def _joined(values: Iterable) -> str:
    return ";".join(str(value) for value in values)


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _experiment_rows(experiment: Experiment) -> list[dict]:
    spec, estimate = experiment.spec, experiment.estimate
    source = spec["source"]
    return [
        {
            "experiment_id": experiment.pk,
            "name": experiment.name,
            "owner": experiment.owner.get_username(),
            "status": experiment.status,
            "source_kind": source["kind"],
            "record_set": source.get("record_set") or "",
            "topic": source.get("topic") or "",
            "sources": len(source["ids"]),
            "goals": _joined(spec["goals"]),
            "strategies": _joined(spec["strategies"]),
            "models": _joined(spec["models"]),
            "judges": _joined(spec["judges"]),
            "seeds": _joined(spec["seeds"]),
            "call_cap": experiment.call_cap,
            "runs_estimated": estimate.get("runs"),
            "steps_estimated": estimate.get("steps"),
            "completion_tokens_estimated": estimate.get("completion_tokens"),
            "params_json": json.dumps(spec.get("params", {}), sort_keys=True),
            "created_at": _utc(experiment.created_at),
            "started_at": _utc(experiment.started_at),
            "finished_at": _utc(experiment.finished_at),
        }
    ]


def _run_rows(runs: Iterable[Run]) -> Iterator[dict]:
    for run in runs:
        outcome = run.outcome or {}
        result = (outcome.get("goals") or {}).get(run.goal)
        yield {
            "run_id": run.pk,
            "experiment_id": run.experiment_id,
            "cell": run.cell,
            "status": run.status,
            "record_id": run.record_id,
            "record_title": run.record.title,
            "term": run.record.term,
            "task_id": run.task_id,
            "party_count": len(run.groups),
            "groups": _joined(run.groups),
            "veto_group": run.veto_group or "",
            "goal": run.goal,
            "strategy": run.strategy,
            "model": run.model,
            "judge": run.judge,
            "judge_model": run.judge_model,
            "seed": run.seed,
            "weighted_total": outcome.get("weighted_total"),
            "goal_passed": result if isinstance(result, bool) else None,
            "goal_score": float(result) if isinstance(result, (int, float)) and not isinstance(result, bool) else None,
            "outcome_goals_json": json.dumps(outcome["goals"], sort_keys=True) if outcome.get("goals") else None,
            "fallback_groups": _joined(outcome.get("fallbacks") or ()),
            "prompt_tokens": run.prompt_tokens,
            "completion_tokens": run.completion_tokens,
            "model_seconds": run.model_seconds,
            "uncached_steps": run.uncached_steps,
            "wall_seconds": run.wall_seconds,
            "error": run.error,
            "created_at": _utc(run.created_at),
            "started_at": _utc(run.started_at),
            "finished_at": _utc(run.finished_at),
        }


def _group_score_rows(runs: Iterable[Run]) -> Iterator[dict]:
    for batch in _batches(runs):
        real = {
            (record_id, code): (score, choice)
            for record_id, code, score, choice in Stance.objects.filter(
                record_id__in={run.record_id for run in batch}
            ).values_list("record_id", "group__code", "real_score", "real_choice")
        }
        rewards = {
            (run_id, code): (deontological, utilitarian)
            for run_id, code, deontological, utilitarian in RunGroupScore.objects.filter(
                run_id__in=[run.pk for run in batch]
            ).values_list("run_id", "group", "reward_deontological", "reward_utilitarian")
        }
        for run in batch:
            yield from _run_group_scores(run, real, rewards)


def _run_group_scores(
    run: Run,
    real: dict[tuple[int, str], tuple[float, int]],
    rewards: dict[tuple[int, str], tuple[float | None, float | None]],
) -> Iterator[dict]:
    outcome = run.outcome or {}
    scores = outcome.get("scores") or {}
    fallbacks = set(outcome.get("fallbacks") or ())
    for position, code in enumerate(run.groups, start=1):
        real_score, real_choice = real.get((run.record_id, code), (None, None))
        deontological, utilitarian = rewards.get((run.pk, code), (None, None))
        yield {
            "run_id": run.pk,
            "experiment_id": run.experiment_id,
            "group": code,
            "position": position,
            "seat_share": float(run.seats[code]),
            "score": scores.get(code),
            "fallback": (code in fallbacks) if scores else None,
            "is_veto_group": code == run.veto_group,
            "real_score": real_score,
            "real_choice": real_choice,
            "reward_deontological": deontological,
            "reward_utilitarian": utilitarian,
        }


def _event_rows(events: QuerySet[RunEvent]) -> Iterator[dict]:
    columns = ("run_id", "run__experiment_id", "seq", "type", "at", "data")
    rows = events.order_by("run_id", "seq").values_list(*columns).iterator(chunk_size=ROWS_PER_BATCH)
    for run_id, experiment_id, seq, type_, at, data in rows:
        usage = data.get("usage") if isinstance(data, dict) else None
        yield {
            "run_id": run_id,
            "experiment_id": experiment_id,
            "seq": seq,
            "type": type_,
            "at": _utc(at),
            "prompt_tokens": usage.get("prompt_tokens") if usage else None,
            "completion_tokens": usage.get("completion_tokens") if usage else None,
            "cached": bool(usage.get("cached")) if usage else None,
            "data_json": json.dumps(data, sort_keys=True),
        }


Rows = Callable[[], Iterable[dict]]  # called once per format: each call reads the rows afresh


def experiment_tables(*, experiment: Experiment) -> dict[str, Rows]:
    """The experiment's tidy tables: for each, a function giving its rows (dicts keyed by the
    TABLES columns, in order), read from the database in batches."""

    def runs() -> Iterator[Run]:
        return experiment.runs.select_related("record").order_by("pk").iterator(chunk_size=ROWS_PER_BATCH)

    return {
        "experiments": lambda: _experiment_rows(experiment),
        "runs": lambda: _run_rows(runs()),
        "group_scores": lambda: _group_score_rows(runs()),
        "events": lambda: _event_rows(RunEvent.objects.filter(run__experiment=experiment)),
    }


def run_tables(*, run: Run) -> dict[str, Rows]:
    """One run's tidy tables (runs, group_scores, events), the same columns as an experiment's;
    experiment_id is empty for a run outside an experiment (a classroom session, a single run)."""
    return {
        "runs": lambda: _run_rows([run]),
        "group_scores": lambda: _group_score_rows([run]),
        "events": lambda: _event_rows(RunEvent.objects.filter(run=run)),
    }


ROWS_PER_BATCH = 1000


def _batches(items: Iterable, size: int = ROWS_PER_BATCH) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _jsonable(row: dict) -> dict:
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in row.items()}


class _Pipe(io.RawIOBase):
    """Where zipfile writes the archive: it keeps what was written until the generator hands it
    on (zipfile writes to an unseekable stream with data descriptors, sizes after each member)."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._pieces.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._pieces)
        self._pieces.clear()
        return data


def _csv_member(member, rows: Iterable[dict], columns: Sequence[Column], pipe: _Pipe) -> Iterator[bytes]:
    text = io.TextIOWrapper(member, encoding="utf-8", newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([column.name for column in columns])
    for batch in _batches(rows):
        writer.writerows([_cell(row[column.name]) for column in columns] for row in batch)
        text.flush()
        yield pipe.take()
    text.flush()
    text.detach()  # the member stays open for the archive to close


def _json_member(member, rows: Iterable[dict], pipe: _Pipe) -> Iterator[bytes]:
    separator = b"[\n"
    for batch in _batches(rows):
        for row in batch:
            member.write(separator + json.dumps(_jsonable(row), indent=1).encode())
            separator = b",\n"
        yield pipe.take()
    member.write(b"[]" if separator == b"[\n" else b"\n]")


def _parquet_member(member, rows: Iterable[dict], columns: Sequence[Column], pipe: _Pipe) -> Iterator[bytes]:
    # Parquet's footer needs the file's offsets: it is written to a temporary file, one row group
    # per batch, then copied into the archive in pieces.
    schema = pa.schema([pa.field(column.name, ARROW_TYPES[column.type]) for column in columns])
    with tempfile.TemporaryFile() as spool:
        with pq.ParquetWriter(spool, schema) as writer:
            written = False
            for batch in _batches(rows):
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                written = True
            if not written:
                writer.write_table(pa.Table.from_pylist([], schema=schema))
        spool.seek(0)
        while piece := spool.read(2**20):
            member.write(piece)
            yield pipe.take()


def _zip_pieces(tables: dict[str, Rows], formats: Sequence[str], readme: str) -> Iterator[bytes]:
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, rows in tables.items():
            columns = TABLES[name]
            if "csv" in formats:
                with archive.open(f"{name}.csv", "w", force_zip64=True) as member:
                    yield from _csv_member(member, rows(), columns, pipe)
            if "parquet" in formats:
                with archive.open(f"{name}.parquet", "w", force_zip64=True) as member:
                    yield from _parquet_member(member, rows(), columns, pipe)
            if "json" in formats:
                with archive.open(f"{name}.json", "w", force_zip64=True) as member:
                    yield from _json_member(member, rows(), pipe)
            yield pipe.take()
        dictionary = [row for row in data_dictionary() if row["table"] in tables]
        with archive.open("data_dictionary.csv", "w") as member:
            yield from _csv_member(member, dictionary, DICTIONARY_COLUMNS, pipe)
        archive.writestr("data_dictionary.json", json.dumps(dictionary, indent=1).encode())
        archive.writestr("README.txt", readme)
    yield pipe.take()


def _export_zip(tables: dict[str, Rows], formats: Sequence[str], readme: str) -> Iterator[bytes]:
    """The zip's bytes, piece by piece; an unknown format is refused (ValueError) at once."""
    formats = list(dict.fromkeys(formats))
    unknown = [name for name in formats if name not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"formats: choose from {', '.join(FORMATS)} (got {', '.join(unknown) or 'none'})")
    return (piece for piece in _zip_pieces(tables, formats, readme) if piece)


def experiment_export(*, experiment: Experiment, formats: Sequence[str] = FORMATS) -> Iterator[bytes]:
    """A zip of the experiment's tables in each asked format (runs.csv, runs.parquet, runs.json,
    ...) and the data dictionary (data_dictionary.csv and .json, always), as pieces of bytes to
    stream (StreamingHttpResponse) or write to a file."""
    return _export_zip(experiment_tables(experiment=experiment), formats, README)


def run_export(*, run: Run, formats: Sequence[str] = ("csv", "json")) -> Iterator[bytes]:
    """A zip of one run's tables (runs, group_scores, events) and their data dictionary, in pieces."""
    return _export_zip(run_tables(run=run), formats, RUN_README)
