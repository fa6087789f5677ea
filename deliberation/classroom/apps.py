from django.apps import AppConfig


class ClassroomConfig(AppConfig):
    name = "deliberation.classroom"
    label = "classroom"
    default_auto_field = "django.db.models.BigAutoField"
