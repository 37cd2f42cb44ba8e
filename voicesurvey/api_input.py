"""What every API request's input goes through before a view sees it: the JSON parser (size,
depth, NUL characters) and the one datetime filter (offsets no zone has, instants that overflow
once converted to UTC). Each turns bad input into a 4xx in the error shape, never a database
error."""

import datetime as dt

import django_filters
import django_filters.rest_framework
from django import forms
from django.conf import settings
from django.db import models
from rest_framework import exceptions, parsers, serializers
from rest_framework.utils import json

from voicesurvey.api_common import content_length

# No zone on Earth is further from UTC than +14:00 (Kiribati) or -12:00; PostgreSQL refuses
# beyond 15:59, and an offset of 20 hours is a typo, not a place.
MAX_UTC_OFFSET = dt.timedelta(hours=14)
OFFSET_MESSAGE = "The UTC offset must be between -14:00 and +14:00."
RANGE_MESSAGE = "The date is out of range once converted to UTC."
NUL_MESSAGE = "Null characters are not allowed."


def checked_datetime(value: dt.datetime) -> dt.datetime:
    """`value` with a real-world offset and convertible to UTC, or ValueError with the reason."""
    offset = value.utcoffset()
    if offset is None:
        return value
    if abs(offset) > MAX_UTC_OFFSET:
        raise ValueError(OFFSET_MESSAGE)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(RANGE_MESSAGE) from None


class DateTimeFormField(django_filters.fields.IsoDateTimeField):
    """ISO 8601; an aware value comes out in UTC, a naive one is UTC (TIME_ZONE)."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return checked_datetime(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    """Every `*_after` / `*_before` filter of the API."""

    field_class = DateTimeFormField


def check_serializer_datetime(value: dt.datetime) -> dt.datetime:
    """For DateTimeField subclasses of serializers that keep the offset they were given."""
    try:
        checked_datetime(value)
    except ValueError as exc:
        raise serializers.ValidationError(str(exc), code="invalid") from None
    return value


class PhoneField(serializers.CharField):
    """A phone number in a request body: text only. As a JSON number it has already lost its
    leading + or 0s (0044 20… arrives as 44 20…), so it is refused rather than guessed."""

    default_error_messages = {"not_text": 'Send the number as text, e.g. "+14155550100".'}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_text")
        return super().to_internal_value(data)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing what the database or Python cannot take as a 4xx in the
    error shape: a body above DATA_UPLOAD_MAX_MEMORY_SIZE (413, refused by its Content-Length
    before it is read, and the read capped), nesting deeper than MAX_DEPTH (400, where Python
    would hit its recursion limit) and NUL characters in any string (400 naming the field:
    PostgreSQL text cannot hold them)."""

    MAX_DEPTH = 32

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = parser_context.get("request")
        if request is not None and content_length(request) > limit:
            raise too_large(limit)
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise too_large(limit)
        encoding = parsers.get_encoding(parser_context)
        parse_constant = json.strict_constant if self.strict else None
        try:
            data = json.loads(raw.decode(encoding), parse_constant=parse_constant)
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        except RecursionError:
            raise exceptions.ParseError(self.too_deep) from None
        check_json(data, max_depth=self.MAX_DEPTH)
        return data

    too_deep = f"JSON parse error - nested deeper than {MAX_DEPTH} levels."


def too_large(limit: int) -> exceptions.APIException:
    from voicesurvey.api_errors import PayloadTooLarge

    return PayloadTooLarge(f"The request body is larger than {limit} bytes.")


def check_json(data, *, max_depth: int) -> None:
    """ParseError past `max_depth`, ValidationError naming the field ("questions.0.text") for a
    NUL character in a key or a string. Iterative: a deep document cannot overflow the stack."""
    stack = [(data, (), 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise nul_error(path)
        elif isinstance(value, dict | list):
            if depth >= max_depth:
                raise exceptions.ParseError(JSONParser.too_deep)
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and "\x00" in key:
                    raise nul_error(path)
                stack.append((item, (*path, str(key)), depth + 1))


def nul_error(path: tuple) -> serializers.ValidationError:
    field = ".".join(path) or "non_field_errors"
    return serializers.ValidationError({field: [NUL_MESSAGE]})


class FilterSet(django_filters.rest_framework.FilterSet):
    """The API's FilterSet: a datetime field named in Meta.fields gets DateTimeFilter too."""

    FILTER_DEFAULTS = {
        **django_filters.rest_framework.FilterSet.FILTER_DEFAULTS,
        models.DateTimeField: {"filter_class": DateTimeFilter},
    }
