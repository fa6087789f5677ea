"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deliberation.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from deliberation.bodylimit import BodySizeLimit  # noqa: E402
from deliberation.routing import websocket_application  # noqa: E402
from worker.embedded import embedded_worker_start  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodySizeLimit(django_asgi_app),
        "websocket": websocket_application,
    }
)

# The embedded default: tasks run in a worker thread of this process (no broker server).
embedded_worker_start()
