from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "deliberation.live"
    label = "live"
    default_auto_field = "django.db.models.BigAutoField"
