from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "deliberation.runs"
    label = "runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Load the Celery app with Django so that @shared_task binds to it in every process.
        import worker.celery  # noqa: F401
        from deliberation.calibration.services import calibration_cell_listener_set
        from deliberation.runs.calibration_cells import experiment_calibration_cell_moved
        from deliberation.runs.completion_store import DatabaseCompletionStore
        from worker.models.cache import completion_store_set

        completion_store_set(DatabaseCompletionStore())  # the cache's rows are this app's table
        calibration_cell_listener_set(experiment_calibration_cell_moved)  # its cells' news reaches the page
