"""The project's URLs plus a bare view that does one UPDATE: the reference for what a request
costs without our logic."""

from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from calls.models import CallAttempt


@csrf_exempt
def bare_update(request, call_id):
    sequence = int(request.POST.get("SequenceNumber", "0"))
    CallAttempt.objects.filter(call_id=call_id).update(last_sequence_number=sequence)
    return HttpResponse(status=204)


urlpatterns = [
    path("bench/bare/<str:call_id>/", bare_update),
    path("", include("voicesurvey.urls")),
]
