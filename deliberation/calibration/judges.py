"""`calibrated:<id>` judges: a calibration's judge and model through its isotonic map, offered to
runs and experiments through registry.clients (registered in CalibrationConfig.ready)."""

from deliberation.calibration.models import Calibration
from deliberation.calibration.selectors import calibrations_with_map
from deliberation.engine.calibration import IsotonicMap
from deliberation.engine.judges import CalibratedJudge, Judge
from deliberation.engine.models import CallObserver
from deliberation.registry.clients import CALIBRATED_PREFIX, Endpoints, JudgeProvider, judge_for
from deliberation.registry.selectors import model_endpoint

CALIBRATED_CHOICES = 50  # the newest calibrations offered as judges in the forms


def calibrated_judge(
    name: str, *, allow_raw: bool, observer: CallObserver | None = None, endpoints: Endpoints = model_endpoint
) -> Judge:
    number = name.removeprefix(CALIBRATED_PREFIX)
    calibration = Calibration.objects.filter(pk=int(number)).first() if number.isdigit() else None
    if calibration is None:
        raise ValueError(f"judge {name!r}: no calibration {number}")
    if calibration.status != Calibration.Status.FINISHED:
        raise ValueError(f"judge {name!r}: calibration {number} is {calibration.status}, not finished")
    isotonic = (calibration.results or {}).get("isotonic")
    if not isotonic:
        raise ValueError(f"judge {name!r}: calibration {number} has no isotonic map (too few records)")
    inner = judge_for(
        calibration.judge, model=calibration.judge_model, allow_raw=allow_raw, observer=observer, endpoints=endpoints
    )
    return CalibratedJudge(inner, IsotonicMap.from_dict(isotonic["map"]), name=name)


def calibrated_choices() -> list[str]:
    return [f"{CALIBRATED_PREFIX}{pk}" for pk in calibrations_with_map(limit=CALIBRATED_CHOICES)]


CALIBRATED_JUDGES = JudgeProvider(prefix=CALIBRATED_PREFIX, build=calibrated_judge, choices=calibrated_choices)
