"""`calibrated:<id>` judges: a calibration's judge and model through its isotonic map, offered to
runs and experiments through registry.clients (registered in CalibrationConfig.ready). Any
calibration with a map is one, however old; the forms offer the newest CALIBRATED_CHOICES."""

from deliberation.calibration.models import Calibration
from deliberation.calibration.selectors import calibrations_with_map
from deliberation.engine.calibration import IsotonicMap
from deliberation.engine.judges import CalibratedJudge, Judge
from deliberation.engine.models import CallObserver
from deliberation.registry.clients import CALIBRATED_PREFIX, Endpoints, JudgeProvider, judge_for, judge_model_for
from deliberation.registry.selectors import model_endpoint

CALIBRATED_CHOICES = 50  # the newest calibrations offered as judges in the forms


def calibration_with_map(name: str) -> tuple[Calibration, dict]:
    """The calibration a `calibrated:<id>` judge names (its judge, its model, no pairs) and its
    isotonic map; ValueError saying which part is missing."""
    number = name.removeprefix(CALIBRATED_PREFIX)
    if not number.isdigit():
        raise ValueError(f"judge {name!r}: write {CALIBRATED_PREFIX}<calibration id>, the id a number")
    calibration = Calibration.objects.only("judge", "judge_model", "status", "results").filter(pk=int(number)).first()
    if calibration is None:
        raise ValueError(f"judge {name!r}: there is no calibration {number}")
    if calibration.status != Calibration.Status.FINISHED:
        raise ValueError(f"judge {name!r}: calibration {number} is {calibration.status}, not finished")
    isotonic = (calibration.results or {}).get("isotonic")
    if not isotonic:
        raise ValueError(
            f"judge {name!r}: calibration {number} has no isotonic map "
            "(too few records to fit one on a split; calibrate on more records)"
        )
    return calibration, isotonic


def calibrated_judge(
    name: str, *, allow_raw: bool, observer: CallObserver | None = None, endpoints: Endpoints = model_endpoint
) -> Judge:
    calibration, isotonic = calibration_with_map(name)
    inner = judge_for(
        calibration.judge, model=calibration.judge_model, allow_raw=allow_raw, observer=observer, endpoints=endpoints
    )
    return CalibratedJudge(inner, IsotonicMap.from_dict(isotonic["map"]), name=name)


def calibrated_check(name: str) -> None:
    calibration_with_map(name)


def calibrated_model(name: str) -> str:
    """The model a calibrated judge calls: its calibration's judge's (an llm judge's model)."""
    calibration, _ = calibration_with_map(name)
    return judge_model_for(calibration.judge, model=calibration.judge_model)


def calibrated_choices() -> list[str]:
    return [f"{CALIBRATED_PREFIX}{pk}" for pk in calibrations_with_map(limit=CALIBRATED_CHOICES)]


CALIBRATED_JUDGES = JudgeProvider(
    prefix=CALIBRATED_PREFIX,
    syntax=f"{CALIBRATED_PREFIX}<calibration id>",
    build=calibrated_judge,
    check=calibrated_check,
    model_of=calibrated_model,
    choices=calibrated_choices,
)
