from django.contrib import admin
from django.urls import include, path

from deliberation.health import healthz
from deliberation.records.views import SignInView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("deliberation.records.urls")),
    path("accounts/login/", SignInView.as_view(), name="login"),  # throttled; before Django's own
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("deliberation.scenarios.urls")),
    path("", include("deliberation.runs.urls")),
    path("", include("deliberation.dashboards.urls")),
    path("", include("deliberation.classroom.urls")),
    path("", include("deliberation.calibration.urls")),
    path("api/v1/", include("deliberation.api.urls")),
]
