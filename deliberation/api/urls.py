"""The REST API for scripts: record sets, records, scenarios, runs, experiments (api.py)."""

from django.urls import path

from deliberation.api.api import api

urlpatterns = [path("", api.urls)]
