from django.urls import path

from deliberation.calibration import views

urlpatterns = [
    path("calibrations/", views.calibration_index, name="calibration-list"),
    path("calibrations/<int:calibration_id>/", views.calibration_detail, name="calibration-detail"),
]
