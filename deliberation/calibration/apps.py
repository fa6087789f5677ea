from django.apps import AppConfig


class CalibrationConfig(AppConfig):
    name = "deliberation.calibration"
    label = "calibration"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Judge calibration"

    def ready(self) -> None:
        from deliberation.calibration.judges import CALIBRATED_JUDGES
        from deliberation.registry.clients import judge_provider_register

        judge_provider_register(CALIBRATED_JUDGES)
