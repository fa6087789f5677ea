from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict:
    """What every page may need to know about this installation."""
    return {"open_signup": settings.HEMICYCLE_OPEN_SIGNUP}
