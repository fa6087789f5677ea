"""The websocket routes (beside urls.py, the HTTP ones): each app's consumers under one origin check."""

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from deliberation.classroom.consumers import ClassroomConsumer
from deliberation.runs.consumers import ExperimentConsumer, RunConsumer

websocket_urlpatterns = [
    path("ws/runs/<int:run_id>/", RunConsumer.as_asgi()),
    path("ws/experiments/<int:experiment_id>/", ExperimentConsumer.as_asgi()),
    path("ws/classroom/<str:code>/", ClassroomConsumer.as_asgi()),
]

# Foreign Origins are refused; the session cookie tells the consumer who is watching.
websocket_application = AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
