from django.conf import settings
from django.http import HttpRequest

from deliberation.engine.labels import display_labels
from deliberation.records.models import SEATING_ORDER


def site(request: HttpRequest) -> dict:
    """What every page may need to know about this installation."""
    return {
        "open_signup": settings.HEMICYCLE_OPEN_SIGNUP,
        "seating_order": SEATING_ORDER,
        "display_labels": display_labels(),
    }
