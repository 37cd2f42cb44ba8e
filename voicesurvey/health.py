"""/healthz: the database answers and the dialler ticked recently."""

import datetime as dt

from django.conf import settings
from django.db import DatabaseError
from django.http import JsonResponse
from django.utils import timezone

from calls.models import DiallerHeartbeat


def healthz(request):
    try:
        beat = DiallerHeartbeat.objects.filter(pk=1).first()
    except DatabaseError as exc:
        return JsonResponse({"status": "error", "database": "down", "detail": str(exc)}, status=503)
    limit = dt.timedelta(seconds=max(60, 6 * settings.DIALLER_TICK_INTERVAL))
    if beat is None:
        return JsonResponse({"status": "error", "database": "ok", "last_tick_at": None}, status=503)
    age = timezone.now() - beat.last_tick_at
    body = {
        "status": "ok" if age <= limit else "error",
        "database": "ok",
        "last_tick_at": beat.last_tick_at.isoformat(),
        "last_tick_age_seconds": round(age.total_seconds(), 1),
    }
    return JsonResponse(body, status=200 if age <= limit else 503)
