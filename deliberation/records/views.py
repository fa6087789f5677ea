from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from deliberation.records.selectors import record_set_list


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "records/home.html", {"record_sets": record_set_list()})
