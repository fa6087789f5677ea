"""One error vocabulary: what a service refuses, as an ApplicationError with a `code` (machine)
and a `user_message` (for the person who asked), and where each kind maps on each interface.

A service raises a subclass (NotFound, Forbidden, Invalid, Conflict, QuotaExceeded); its own
errors (RunControlError, BudgetExceeded, ...) are subclasses of these. Each interface maps them in
one place:
- HTTP, the API: deliberation/api/api.py's exception handler, with error_body() and `status`;
- HTTP, plain views: ApplicationErrorMiddleware below (the same body and status as JSON);
- websockets: websocket_refusal() below (the frame a refused action gets) and
  websocket_close_code() (the code a refused socket closes with: 4403);
- CLI: deliberation/commands.py (CommandError, exit code 1).
The engine's own errors (ScenarioError, ParamsError, ...) stay plain ValueErrors: the engine
knows no interface; the services turn them into these.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse


class ApplicationError(Exception):
    """A request the application refuses; never a bug (those stay exceptions of their own)."""

    code = "invalid"
    status = 400  # the HTTP status of this kind

    def __init__(self, message: str = "", *, field: str | None = None) -> None:
        super().__init__(message)
        self.user_message = message
        self.field = field

    def field_errors(self) -> dict[str, list[str]]:
        """{field: [message]}: `field`, else the "field: message" prefix the services' messages
        carry, else "__all__"."""
        if self.field:
            return {self.field: [self.user_message]}
        field, sep, message = self.user_message.partition(": ")
        if sep and field:
            return {field: [message]}
        return {"__all__": [self.user_message]}


class Invalid(ApplicationError):
    """The input is wrong; the body names the field(s)."""

    code = "invalid"
    status = 400


class NotFound(ApplicationError):
    code = "not_found"
    status = 404


class Forbidden(ApplicationError):
    """The user may not do this (never the built-in PermissionError: that is an OSError)."""

    code = "forbidden"
    status = 403


class Conflict(ApplicationError):
    """Not in this state (a finished run cannot be paused)."""

    code = "conflict"
    status = 409


class QuotaExceeded(Invalid):
    """Over a budget or a cap: an invalid request whose field is the budget."""

    code = "quota_exceeded"
    status = 400


def error_body(error: ApplicationError) -> dict:
    """The JSON body of an error, in the shapes the API documents: field errors
    ({"errors": {field: [message]}}) for invalid input, {"error": message} otherwise."""
    if isinstance(error, Invalid):
        return {"errors": error.field_errors()}
    return {"error": error.user_message}


def websocket_close_code(kind: type[ApplicationError]) -> int:
    """The code a socket closes with when its viewer is refused: 4000 + the HTTP status (4403:
    may not watch, or no longer; 4404: no such thing)."""
    return 4000 + kind.status


def websocket_refusal(error: ApplicationError, *, action: str) -> dict:
    """The frame a consumer sends when a message's action is refused."""
    return {"type": "refused", "action": action, "code": error.code, "message": error.user_message}


class ApplicationErrorMiddleware:
    """Plain Django views: an ApplicationError a view lets through answers its status and body."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, ApplicationError):
            return JsonResponse(error_body(exception), status=exception.status)
        return None
