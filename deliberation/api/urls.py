"""The REST API for scripts (issue 5): record sets, scenarios, runs, experiments, results."""

urlpatterns: list = []
