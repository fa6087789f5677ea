from django.urls import path

from deliberation.dashboards import views

urlpatterns = [
    path("experiments/", views.experiment_list, name="experiment-list"),
    path("experiments/new", views.experiment_new, name="experiment-new"),
    path("experiments/<int:experiment_id>/", views.experiment_dashboard, name="experiment-dashboard"),
    path("experiments/<int:experiment_id>/results", views.experiment_results, name="experiment-results"),
    path("experiments/<int:experiment_id>/runs", views.experiment_run_list, name="experiment-runs"),
    path("experiments/<int:experiment_id>/sweep", views.experiment_sweep, name="experiment-sweep"),
]
