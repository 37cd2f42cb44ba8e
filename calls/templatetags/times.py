"""Times in the back office's templates: the operator's zone, labelled, and the callee's."""

import json

from django import template

from voicesurvey.times import callee_time as callee_time_text
from voicesurvey.times import operator_time as operator_time_text

register = template.Library()


@register.filter
def operator_time(value, precision: str = "") -> str:
    """{{ at|operator_time }} -> "2026-11-23 13:00 CET"; {{ at|operator_time:"seconds" }}."""
    return operator_time_text(value, seconds=precision == "seconds")


@register.filter
def callee_time(value, zones) -> str:
    """{{ at|callee_time:contact.zones }} -> "07:00:05 EST", on the callee's clock."""
    return callee_time_text(value, list(zones or []), seconds=True)


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
