from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RegistryConfig(AppConfig):
    name = "deliberation.registry"
    label = "registry"
    verbose_name = "Model registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # After every migrate (and every flush, which tests do between transactional tests), the
        # models declared in settings.HEMICYCLE_MODELS exist: `make run` offers them with nothing
        # to configure, and an admin's edits to them are kept (only missing names are created).
        from deliberation.registry.services import models_sync_from_settings

        post_migrate.connect(models_sync_from_settings, sender=self, dispatch_uid="registry-models-sync")
