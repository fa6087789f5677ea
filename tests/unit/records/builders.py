"""Builders for small EuroCon / PoliCon files written in tmp_path (the text is made up here)."""

import json
import math
from pathlib import Path
from typing import Any

from deliberation.records.importing.report import ImportReport
from deliberation.records.services import records_import

# Two topics in the EuroCon release's layout, written for this project (the tests never read the release).
EUROCON_SUBSET = Path(__file__).resolve().parents[3] / "fixtures" / "eurocon_subset"


def stance(code: str, score: float, text: str | list[str] | None = None, **overrides: Any) -> dict:
    return {
        "party_name": code,
        "score": score,
        "choice": min(9, math.floor(10 * score)),
        "stance": text if text is not None else f"{code} weighs the issue.  \n{code} states its view.",
        **overrides,
    }


DEFAULT_STANCES = (("EPP", 0.9), ("SD", 0.45), ("ALDE", 0.1))


def topic_record(
    record_id: int = 0,
    *,
    title: str = "Rules on test widgets",
    term: str = "7th_datas",
    topic: str = "agriculture",
    stances: list[dict] | None = None,
    **overrides: Any,
) -> dict:
    stances = [stance(code, score) for code, score in DEFAULT_STANCES] if stances is None else stances
    return {
        "topic": topic,
        "title": title,
        "background": f"The Commission proposed {title.lower()}; the groups disagree.",
        "stances": stances,
        "resolution": f"The European Parliament adopts {title.lower()} with amendments.",
        "total_score": 0.61,
        "total_choice": 6,
        "party_num": len(stances),
        "id": record_id,
        "parliament_terms": term,
        **overrides,
    }


def task_record(record: dict, codes: list[str], weights: list[float], veto: str, **overrides: Any) -> dict:
    stances = [item for item in record["stances"] if item["party_name"] in codes]
    return {
        **record,
        "stances": stances,
        "party_num": len(stances),
        "seat_weights": weights,
        "veto_party_name": veto,
        **overrides,
    }


def write_json(root: Path, relative: str, data: Any) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def run_import(*paths: Path, name: str = "Test set") -> ImportReport:
    return records_import(paths=list(paths), name=name)


def problems_of(report: ImportReport) -> list[tuple[str, str, str]]:
    """(record, field, message) of every problem, file left out."""
    return [(problem.record, problem.field, problem.message) for problem in report.problems]
