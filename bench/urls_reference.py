"""The project's URLs plus a bare view: the benchmarks' reference for the cost of a request."""

from django.http import HttpResponse
from django.urls import include, path


def bare(request):
    return HttpResponse("ok")


urlpatterns = [
    path("bench/bare/", bare),
    path("", include("voicesurvey.urls")),
]
