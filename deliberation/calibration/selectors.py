"""Reads of calibrations: one, the list, the latest per judge on a record set, a text summary."""

from collections.abc import Iterable

from django.db.models import Count, F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from deliberation.calibration.models import Calibration, CalibrationScore


def calibration_list() -> QuerySet[Calibration]:
    return Calibration.objects.select_related("record_set", "record_set_version").defer("pairs")


def calibration_get(*, calibration_id: int) -> Calibration:
    return Calibration.objects.select_related("record_set", "record_set_version").get(pk=calibration_id)


def experiment_calibration_cells(*, experiment_id: int) -> list[dict]:
    """An experiment's calibration cells in the order they were created (the grid's), as its
    progress carries them (runs.selectors.experiment_progress) and its dashboard shows them: status,
    `scored` of `total` scores (all of them once finished: the finish deletes the chunks), and
    Pearson r, MAE and bias once finished. One query: the chunks are counted in a subquery."""
    chunks = (
        CalibrationScore.objects.filter(calibration=OuterRef("pk"))
        .order_by()
        .values("calibration")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = (
        Calibration.objects.filter(experiment_id=experiment_id)
        .order_by("pk")
        .values(
            "id",
            "cell",
            "judge",
            "judge_model",
            "status",
            "total",
            "error",
            stored=Coalesce(Subquery(chunks), 0),
            pearson=F("results__pearson"),
            mae=F("results__mae"),
            bias=F("results__bias"),
        )
    )
    cells = list(rows)
    for cell in cells:
        finished = cell["status"] == Calibration.Status.FINISHED
        stored = cell.pop("stored")
        cell["scored"] = cell["total"] if finished else stored
        if not finished:  # a failed cell's results are empty; none is shown before the finish
            cell.update(pearson=None, mae=None, bias=None)
    return cells


def calibrations_finished() -> QuerySet[Calibration]:
    """The calibrations with results: queued, running and failed ones have none."""
    return calibration_list().filter(status=Calibration.Status.FINISHED)


def calibration_scored(*, calibration: Calibration) -> int:
    """How many of its `total` scores a calibration has made (all of them once finished)."""
    if calibration.status == Calibration.Status.FINISHED:
        return calibration.total or len(calibration.pairs)
    return calibration.scores.count()


def calibrations_latest(
    *, record_set_ids: Iterable[int], judges: Iterable[str] | None = None
) -> dict[str, list[Calibration]]:
    """Per judge, the latest calibration of each judge model on any of these record sets (newest
    first); with `judges`, each of them is a key, an empty list when it was never calibrated there."""
    latest: dict[str, dict[str, Calibration]] = {judge: {} for judge in judges or ()}
    rows = calibrations_finished().filter(record_set_id__in=list(record_set_ids)).order_by("-created_at", "-id")
    if judges is not None:
        rows = rows.filter(judge__in=list(judges))
    for calibration in rows.defer("pairs", "errors"):
        latest.setdefault(calibration.judge, {}).setdefault(calibration.judge_model, calibration)
    return {judge: list(by_model.values()) for judge, by_model in latest.items()}


def _number(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def calibration_summary(calibration: Calibration) -> str:
    """The headline numbers as a few lines of text (the command prints them)."""
    r = calibration.results
    model = f" ({calibration.judge_model})" if calibration.judge_model else ""
    lines = [
        f"calibration {calibration.pk}: judge {calibration.judge}{model} on {calibration.record_set.name}",
        f"pairs {r['pairs']} (scored {r['scored']}, fallbacks {r['fallbacks']}, errors {r.get('errors', 0)}), "
        f"records {r['records']}"
        + (
            f" (the {r['excluded_train_records']} records its map was fitted on left out)"
            if r.get("excluded_train_records")
            else ""
        ),
        f"pearson {_number(r['pearson'])} {_ci(r['pearson_ci'])}  spearman {_number(r['spearman'])} {_ci(r['spearman_ci'])}",
        f"mae {_number(r['mae'])}  bias {_number(r['bias'])}  exact {_number(r['exact'])}  "
        f"within 1 {_number(r['within_one'])}  positions {_number(r['positions']['rate'])}",
        "bias by group: "
        + ", ".join(f"{g} {_number(v['bias'], 2)} (n={v['n']})" for g, v in sorted(r["bias_by_group"].items())),
    ]
    iso = r.get("isotonic")
    if iso:
        lines.append(
            f"isotonic (fit on {len(iso['train_records'])} records, tested on {len(iso['test_records'])}): "
            f"test pearson {_number(iso['test_raw']['pearson'])} -> {_number(iso['test_calibrated']['pearson'])}, "
            f"mae {_number(iso['test_raw']['mae'])} -> {_number(iso['test_calibrated']['mae'])}"
        )
    for key, probe in (r.get("probes") or {}).items():
        lines.append(
            f"probe {key}: mean shift {_number(probe['mean_shift'], 2)} {_ci(probe['mean_shift_ci'])}, "
            f"mean |shift| {_number(probe['mean_abs_shift'], 2)}, flips (|shift| >= 2) {_number(probe['flip_rate'], 2)}, "
            f"r {_number(probe['base_pearson'])} -> {_number(probe['pearson'])} on {probe['pairs']} pairs"
        )
    check = r.get("reason_check")
    if check:
        lines.append(
            f"reason check on {check['checked']} of {check['items']} pairs: D {_number(check['d'])}, C {_number(check['c'])}, "
            f"DCG {_number(check['dcg'])}, K {_number(check['k'])}, within 1 {_number(check['agree_within_one'], 2)}, "
            f"unsupported {_number(check['unsupported'], 2)} (no reason {check['no_reason']}, "
            f"no reason-only score {check['no_reason_score']})"
        )
    return "\n".join(lines)


def _ci(ci) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "[n/a]"


def experiment_record_set_ids(*, experiment) -> list[int]:
    """The record sets an experiment's runs play: its task source's set, else its runs' sets."""
    from deliberation.records.models import RecordSet

    name = ((experiment.spec or {}).get("source") or {}).get("record_set")
    if name:
        return list(RecordSet.objects.filter(name=name).values_list("id", flat=True))
    return list(
        experiment.runs.exclude(record_set_version=None)
        .values_list("record_set_version__record_set_id", flat=True)
        .distinct()
    )


def calibrations_for_experiment(*, experiment) -> dict:
    """What the dashboard shows beside each judge's table: that judge's latest calibrations on the
    experiment's record sets, and a version for the results fragment's cache key."""
    record_sets = experiment_record_set_ids(experiment=experiment)
    latest = calibrations_latest(record_set_ids=record_sets)
    newest = (
        calibrations_finished()
        .filter(record_set_id__in=record_sets)
        .order_by(F("finished_at").desc(nulls_last=True), "-id")  # finished before finished_at: null
        .values_list("id", flat=True)
        .first()
    )
    return {"by_judge": latest, "version": newest or 0, "record_set": record_sets[0] if record_sets else None}


def calibrations_with_map(*, limit: int) -> list[int]:
    """Ids of the newest calibrations that fitted an isotonic map (each is a `calibrated:<id>` judge)."""
    return list(
        Calibration.objects.filter(status=Calibration.Status.FINISHED, results__isotonic__isnull=False)
        .exclude(results__isotonic=None)
        .order_by("-id")
        .values_list("id", flat=True)[:limit]
    )
