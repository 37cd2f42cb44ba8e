"""The time zone a back-office user reads times in: their own setting, else TIME_ZONE."""

from functools import cache
from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError

from voicesurvey.accounts.models import OperatorProfile

SESSION_KEY = "operator_time_zone"


@cache
def zone_names() -> list[str]:
    """Every IANA zone the server knows, sorted."""
    return sorted(available_timezones())


def operator_zone(user) -> str:
    """The IANA name of the zone `user` reads the admin in."""
    if user is None or not user.is_authenticated:
        return settings.TIME_ZONE
    zone = (
        OperatorProfile.objects.filter(user_id=user.pk).values_list("time_zone", flat=True).first()
    )
    return zone or settings.TIME_ZONE


def set_operator_zone(*, user, zone: str) -> OperatorProfile:
    """Save `user`'s time zone (empty: back to TIME_ZONE). Raises ValidationError on a zone
    the server does not know."""
    zone = zone.strip()
    if zone and zone not in zone_names():
        raise ValidationError({"time_zone": f"Unknown time zone {zone!r}."})
    profile, _ = OperatorProfile.objects.update_or_create(user=user, defaults={"time_zone": zone})
    return profile
