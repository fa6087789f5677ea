from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from deliberation.records.selectors import record_set_list


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "records/home.html", {"record_sets": record_set_list()})


def signup(request: HttpRequest) -> HttpResponse:
    """Self-service accounts, on where settings allow it (the embedded default does)."""
    if not settings.HEMICYCLE_OPEN_SIGNUP:
        raise Http404("sign-up is closed here; ask an admin for an account")
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        return redirect("scenario-builder")
    return render(request, "registration/signup.html", {"form": form})
