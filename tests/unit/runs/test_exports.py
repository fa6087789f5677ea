import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command

from deliberation.runs.exports import ARROW_TYPES, TABLES, experiment_export
from deliberation.runs.models import Run, RunEvent
from tests.factories import experiment_options

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLE = Path(__file__).resolve().parents[3] / "fixtures" / "sample_records"
SET = "Sample EP issues"


@pytest.fixture(scope="function")
def finished_experiment(play_sample_experiment):
    """A 2-task x 2-strategy x 1-seed experiment on the scripted model, played to the end."""
    return play_sample_experiment("tidy", *experiment_options())


NULLABLE = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}


def unzip(pieces, tmp_path: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(b"".join(pieces))) as archive:
        archive.extractall(tmp_path)
    return tmp_path


def test_csv_and_parquet_read_back_through_pandas_with_declared_columns_and_types(finished_experiment, tmp_path):
    folder = unzip(experiment_export(experiment=finished_experiment, formats=["csv", "parquet"]), tmp_path)
    runs = Run.objects.filter(experiment=finished_experiment)
    expected_rows = {
        "experiments": 1,
        "runs": runs.count(),
        "group_scores": sum(len(run.groups) for run in runs),
        "events": RunEvent.objects.filter(run__experiment=finished_experiment).count(),
    }
    for table, columns in TABLES.items():
        names = [column.name for column in columns]
        # Nullable integers and booleans stay integers and booleans (pandas' nullable dtypes).
        parquet = pq.read_table(folder / f"{table}.parquet").to_pandas(types_mapper=NULLABLE.get)
        schema = pq.read_schema(folder / f"{table}.parquet")
        assert [schema.field(column.name).type for column in columns] == [
            ARROW_TYPES[column.type] for column in columns
        ]
        csv = pd.read_csv(folder / f"{table}.csv")
        assert list(parquet.columns) == names == list(csv.columns)
        assert len(parquet) == len(csv) == expected_rows[table]
        for column in columns:
            if column.type == "timestamp" and parquet[column.name].notna().any():
                assert str(parquet[column.name].dt.tz) == "UTC"
                parsed = pd.to_datetime(csv[column.name], utc=True)
                assert (parsed == parquet[column.name]).all()
            present = parquet[column.name].notna().any()
            if column.type == "integer" and present:
                assert pd.api.types.is_integer_dtype(parquet[column.name])
            if column.type == "boolean" and present:
                assert pd.api.types.is_bool_dtype(parquet[column.name])

    runs_table = pd.read_csv(folder / "runs.csv")
    assert pd.api.types.is_bool_dtype(runs_table["goal_passed"])
    assert pd.api.types.is_float_dtype(runs_table["weighted_total"])
    assert set(runs_table["strategy"]) == {"one-shot", "greedy"}
    assert (runs_table["status"] == "finished").all()
    # A run's seat shares sum to 1 and its scores are the outcome's.
    scores = pd.read_parquet(folder / "group_scores.parquet")
    assert scores.groupby("run_id")["seat_share"].sum().round(6).eq(1).all()
    run = runs.first()
    mine = scores[scores["run_id"] == run.pk].set_index("group")
    assert mine["score"].to_dict() == run.outcome["scores"]
    assert mine["real_choice"].between(0, 9).all()
    # Moral rewards: one-shot and greedy drafts are endorsed by nobody; welfare is the mean score.
    welfare = sum(run.outcome["scores"].values()) / len(run.outcome["scores"])
    assert mine["reward_utilitarian"].round(9).eq(round(welfare, 9)).all()
    assert scores["reward_deontological"].eq(0).all()
    assert json.loads(runs_table.set_index("run_id").loc[run.pk, "outcome_goals_json"]) == run.outcome["goals"]


def test_the_data_dictionary_covers_every_column_of_every_table(finished_experiment, tmp_path):
    folder = unzip(experiment_export(experiment=finished_experiment, formats=["csv", "parquet", "json"]), tmp_path)
    dictionary = pd.read_csv(folder / "data_dictionary.csv")
    assert list(dictionary.columns) == ["table", "column", "type", "meaning"]
    assert dictionary["meaning"].str.len().gt(0).all()
    for table in TABLES:
        documented = list(dictionary.loc[dictionary["table"] == table, "column"])
        assert documented == list(pd.read_csv(folder / f"{table}.csv").columns)
        assert documented == list(pd.read_parquet(folder / f"{table}.parquet").columns)
        assert documented == list(pd.read_json(folder / f"{table}.json", orient="records").columns)
    assert json.loads((folder / "data_dictionary.json").read_text()) == dictionary.to_dict("records")


def test_the_command_writes_the_asked_formats_into_a_zip(finished_experiment, tmp_path):
    out = tmp_path / "tidy.zip"
    call_command("experiment", "export", "tidy", "--out", str(out), "--format", "csv", "json")
    names = set(zipfile.ZipFile(out).namelist())
    assert {"runs.csv", "group_scores.json", "data_dictionary.csv", "README.txt"} <= names
    assert not any(name.endswith(".parquet") for name in names)


def test_an_unknown_format_is_refused(finished_experiment):
    with pytest.raises(ValueError, match="formats"):
        experiment_export(experiment=finished_experiment, formats=["xlsx"])
