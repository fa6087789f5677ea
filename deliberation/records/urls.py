from django.urls import path

from deliberation.records import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/signup/", views.signup, name="signup"),
    path("records/sets/<int:record_set_id>/", views.record_set_detail, name="record-set"),
    path("records/sets/<int:record_set_id>/compare/", views.record_set_compare, name="record-set-compare"),
    path("records/<int:record_id>/", views.record_detail, name="record"),
    path("records/upload/", views.record_upload, name="record-upload"),
    path("records/uploads/<int:upload_id>/", views.record_upload_detail, name="record-upload-detail"),
    path("records/uploads/<int:upload_id>/progress", views.record_upload_progress, name="record-upload-progress"),
]
