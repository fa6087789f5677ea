from django.urls import path

from deliberation.runs import builder, views

urlpatterns = [
    path("scenarios/new/", builder.scenario_builder, name="scenario-builder"),
    path("runs/", views.run_list, name="run-list"),
    path("me/", views.my_dashboard, name="my-dashboard"),
    path("runs/<int:run_id>/", views.run_detail, name="run-detail"),
    path("runs/<int:run_id>/export.zip", views.run_export_zip, name="run-export"),
    path("runs/<int:run_id>/visibility", views.run_visibility, name="run-visibility"),
    path("runs/<int:run_id>/new-seed", views.run_new_seed, name="run-new-seed"),
    path("runs/<int:run_id>/<str:action>", views.run_control, name="run-control"),
    path("api/runs", views.runs_api, name="api-runs"),
    path("api/runs/<int:run_id>", views.run_api, name="api-run"),
    path("api/experiments/<int:experiment_id>/progress", views.experiment_progress_api, name="api-experiment-progress"),
]
