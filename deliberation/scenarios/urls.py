from django.urls import path

from deliberation.scenarios import views

urlpatterns = [
    path("api/records/", views.record_list_api, name="api-records"),
    path("api/records/<int:record_id>/", views.record_detail_api, name="api-record"),
    path("api/records/<int:record_id>/seats", views.seats_preview_api, name="api-seats-preview"),
]
