from django.urls import path

from deliberation.classroom import views

urlpatterns = [
    path("classroom/", views.classroom_home, name="classroom-home"),
    path("classroom/<str:code>/teach/", views.classroom_teach, name="classroom-teach"),
    path("classroom/<str:code>/projector/", views.classroom_projector, name="classroom-projector"),
    path("classroom/<str:code>/seat/", views.classroom_seat, name="classroom-seat"),
    path("classroom/<str:code>/qr.svg", views.classroom_qr, name="classroom-qr"),
    path("join/", views.join, name="classroom-join"),
    path("join/<str:code>/", views.join_code, name="classroom-join-code"),
]
