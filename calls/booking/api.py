"""API for scheduled calls: book, list, edit, pause/resume/cancel (series or next occurrence).

A thin door over `calls.booking.scheduling` and `calls.booking.editing`; DELETE cancels the series
and keeps the row with its event log, as the dialler's history."""

from contextlib import contextmanager
from zoneinfo import ZoneInfo

import django_filters
from django.db.models import Count, Prefetch
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from calls.api import BookedAttemptSerializer, CallEventSerializer
from calls.booking.ad_hoc import DoNotCall, book_ad_hoc_call
from calls.booking.editing import EDITABLE_FIELDS, edit_scheduled_call, upcoming_occurrences
from calls.booking.scheduling import (
    IllegalScheduledCallTransition,
    pause_scheduled_call,
    resume_scheduled_call,
    schedule_call,
)
from calls.dialler.cancel import cancel_booking
from calls.models import (
    MAX_BOOKING_RETRIES,
    MAX_BOOKING_RETRY_DELAY_MINUTES,
    MAX_MISFIRE_GRACE_SECONDS,
    CallAttempt,
    ScheduledCall,
)
from campaigns.api import QuestionSerializer
from campaigns.models import Campaign
from contacts.models import Contact
from voicesurvey.accounts.idempotency import SCHEMA_PARAMETER as IDEMPOTENCY_KEY
from voicesurvey.accounts.idempotency import idempotent
from voicesurvey.api_errors import Conflict
from voicesurvey.api_input import (
    DateTimeFilter,
    FilterSet,
    PhoneField,
    check_serializer_datetime,
)
from voicesurvey.api_schema import error_response

S = ScheduledCall.Status

# --- serializers ------------------------------------------------------------------------------


class WallClockDateTimeField(serializers.DateTimeField):
    """ISO 8601 in; a naive value stays naive (wall-clock time in the call's `timezone`, which
    the domain applies), an aware one keeps its instant."""

    def enforce_timezone(self, value):
        return check_serializer_datetime(value)


RUN_AT_HELP = (
    "First occurrence, ISO 8601. Without an offset it is wall-clock time in `timezone` "
    "(2026-12-01T18:00:00 in Europe/Paris is 18:00 Paris time); with one, that instant."
)


class ScheduledCallSerializer(serializers.ModelSerializer):
    campaign = serializers.IntegerField(source="contact.campaign_id", read_only=True)
    next_run_at_local = serializers.SerializerMethodField(
        help_text="next_run_at in the call's own zone."
    )
    next_occurrences = serializers.SerializerMethodField(
        help_text="The next 5 occurrences the dialler will place (UTC); empty once finished."
    )
    events_count = serializers.IntegerField(read_only=True)
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = ScheduledCall
        fields = [
            "id",
            "contact",
            "campaign",
            "status",
            "run_at",
            "timezone",
            "rrule",
            "next_run_at",
            "next_run_at_local",
            "next_occurrences",
            "skipped_occurrences",
            "misfire_grace_seconds",
            "max_retries",
            "retry_delay_minutes",
            "retries_done",
            "note",
            "events_count",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "format": "date-time", "nullable": True})
    def get_next_run_at_local(self, call):
        if call.next_run_at is None:
            return None
        return call.next_run_at.astimezone(ZoneInfo(call.timezone)).isoformat()

    @extend_schema_field(serializers.ListField(child=serializers.DateTimeField()))
    def get_next_occurrences(self, call):
        now = self.context.get("now") or timezone.now()
        return [
            at.isoformat().replace("+00:00", "Z")
            for at in upcoming_occurrences(call, now=now, count=5)
        ]


class ScheduledCallDetailSerializer(ScheduledCallSerializer):
    events = CallEventSerializer(many=True, read_only=True)
    attempts = serializers.SerializerMethodField(
        help_text="The calls placed for it, oldest first, with the provider's call id, the "
        "outcome and the error; null without the permission to view attempts."
    )

    class Meta(ScheduledCallSerializer.Meta):
        fields = ScheduledCallSerializer.Meta.fields + ["attempts", "events"]
        read_only_fields = fields

    @extend_schema_field(BookedAttemptSerializer(many=True, allow_null=True))
    def get_attempts(self, call):
        request = self.context.get("request")
        if request is not None and not request.user.has_perm("calls.view_callattempt"):
            return None  # as in the admin, where the attempts need their own permission
        return BookedAttemptSerializer(call.attempts.all(), many=True).data


class ScheduledCallCreateSerializer(serializers.Serializer):
    contact = serializers.PrimaryKeyRelatedField(queryset=Contact.objects.all())
    run_at = WallClockDateTimeField(help_text=RUN_AT_HELP)
    timezone = serializers.CharField(
        max_length=64, default="UTC", help_text="IANA zone, e.g. Europe/Paris. Default UTC."
    )
    rrule = serializers.CharField(
        allow_blank=True,
        default="",
        help_text="Optional RFC 5545 rule, e.g. FREQ=WEEKLY;BYDAY=MO,WE;COUNT=5 "
        "(DAILY, WEEKLY, MONTHLY; UNTIL or COUNT), evaluated on wall-clock time in `timezone`.",
    )
    note = serializers.CharField(max_length=500, allow_blank=True, default="")
    max_retries = serializers.IntegerField(
        min_value=0, max_value=MAX_BOOKING_RETRIES, required=False
    )
    retry_delay_minutes = serializers.IntegerField(
        min_value=1, max_value=MAX_BOOKING_RETRY_DELAY_MINUTES, required=False
    )
    misfire_grace_seconds = serializers.IntegerField(
        min_value=0,
        max_value=MAX_MISFIRE_GRACE_SECONDS,
        allow_null=True,
        required=False,
        help_text="Empty: the project's setting.",
    )


class ScheduledCallUpdateSerializer(serializers.Serializer):
    """PATCH only. Changing run_at, timezone or rrule replaces the series' timing (checked as a
    new booking); the contact cannot change: cancel and book anew."""

    run_at = WallClockDateTimeField(required=False, help_text=RUN_AT_HELP)
    timezone = serializers.CharField(max_length=64, required=False)
    rrule = serializers.CharField(allow_blank=True, required=False)
    note = serializers.CharField(max_length=500, allow_blank=True, required=False)
    max_retries = serializers.IntegerField(
        min_value=0, max_value=MAX_BOOKING_RETRIES, required=False
    )
    retry_delay_minutes = serializers.IntegerField(
        min_value=1, max_value=MAX_BOOKING_RETRY_DELAY_MINUTES, required=False
    )
    misfire_grace_seconds = serializers.IntegerField(
        min_value=0, max_value=MAX_MISFIRE_GRACE_SECONDS, allow_null=True, required=False
    )

    def validate(self, attrs):
        fixed = sorted(set(self.initial_data) - set(EDITABLE_FIELDS))
        if fixed:
            raise serializers.ValidationError(
                {name: "This field cannot be changed." for name in fixed}
            )
        return attrs


class AdHocQuestionSerializer(QuestionSerializer):
    position = serializers.IntegerField(
        min_value=1, max_value=1000, required=False, help_text="Default: the order given."
    )


class AdHocCallSerializer(serializers.Serializer):
    phone = PhoneField(
        max_length=32, help_text="The number to call: E.164, or national in DEFAULT_REGION."
    )
    at = WallClockDateTimeField(
        required=False,
        help_text="When to call, ISO 8601; default now. Without an offset it is wall-clock "
        "time in `timezone`.",
    )
    timezone = serializers.CharField(
        max_length=64, default="UTC", help_text="IANA zone for `at` and `rrule`. Default UTC."
    )
    rrule = serializers.CharField(
        allow_blank=True, default="", help_text="Optional RFC 5545 rule to call again."
    )
    message = serializers.CharField(
        max_length=5000,
        allow_blank=True,
        default="",
        help_text="Said when the call is answered; without questions, the call then hangs up.",
    )
    questions = AdHocQuestionSerializer(
        many=True, required=False, help_text="A survey to ask after the message."
    )
    voice = serializers.CharField(max_length=40, default="alice")
    language = serializers.CharField(max_length=16, default="en-US")
    note = serializers.CharField(max_length=500, allow_blank=True, default="")
    max_retries = serializers.IntegerField(
        min_value=0, max_value=MAX_BOOKING_RETRIES, required=False
    )
    retry_delay_minutes = serializers.IntegerField(
        min_value=1, max_value=MAX_BOOKING_RETRY_DELAY_MINUTES, required=False
    )

    def validate_questions(self, value):
        if len(value) > 100:
            raise serializers.ValidationError("At most 100 questions.")
        return value


SCOPE_HELP = "series: the whole call (default); occurrence: only its next occurrence."


class ScopeSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(
        choices=["series", "occurrence"], default="series", help_text=SCOPE_HELP
    )


class CancelSerializer(ScopeSerializer):
    reason = serializers.CharField(
        max_length=500, allow_blank=True, default="", help_text="Kept in the event log."
    )


# --- filters ----------------------------------------------------------------------------------


class ScheduledCallFilter(FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=S.choices)
    campaign = django_filters.ModelChoiceFilter(
        field_name="contact__campaign", queryset=Campaign.objects.all()
    )
    next_run_after = DateTimeFilter(field_name="next_run_at", lookup_expr="gte")
    next_run_before = DateTimeFilter(field_name="next_run_at", lookup_expr="lt")

    class Meta:
        model = ScheduledCall
        fields = ["status", "contact", "campaign"]


# --- views ------------------------------------------------------------------------------------


@contextmanager
def _conflicts():
    """The domain's refusal of a status change answers 409 with the error shape."""
    try:
        yield
    except IllegalScheduledCallTransition as exc:
        raise Conflict(str(exc), code="illegal_transition") from exc


CONFLICT = error_response("The scheduled call's status does not allow this.")
KEY_REUSED = error_response("The Idempotency-Key was sent before with a different request.")


def _action_schema(summary: str, description: str, request=ScopeSerializer):
    return extend_schema(
        summary=summary,
        description=description,
        request=request,
        responses={200: ScheduledCallDetailSerializer, 409: CONFLICT},
    )


@extend_schema_view(
    list=extend_schema(summary="List scheduled calls"),
    retrieve=extend_schema(summary="Get a scheduled call with its next occurrences and events"),
    create=extend_schema(
        summary="Book a scheduled call (once, or on an RFC 5545 rule)",
        request=ScheduledCallCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: ScheduledCallDetailSerializer, 422: KEY_REUSED},
    ),
    partial_update=extend_schema(
        summary="Change a scheduled call's note, retries or timing",
        request=ScheduledCallUpdateSerializer,
        responses={200: ScheduledCallDetailSerializer, 409: CONFLICT},
    ),
    destroy=extend_schema(
        summary="Cancel the whole series (the call and its events are kept; a call in "
        "progress is hung up)",
        responses={204: None, 409: CONFLICT},
    ),
)
class ScheduledCallViewSet(viewsets.ModelViewSet):
    """Calls booked for a set time. Status changes only through pause, resume and cancel (or
    DELETE, which cancels the series): an illegal change answers 409."""

    queryset = ScheduledCall.objects.select_related("contact", "created_by")
    serializer_class = ScheduledCallSerializer
    filterset_class = ScheduledCallFilter
    search_fields = ["note", "contact__phone", "contact__name"]
    ordering_fields = ["next_run_at", "run_at", "created_at", "status", "id"]
    ordering = ["next_run_at", "id"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    # DELETE cancels (keeps the row), so it needs the change permission, not delete.
    action_permissions = {
        **{
            name: ["calls.change_scheduledcall"]
            for name in ("pause", "resume", "cancel", "destroy")
        },
        # An ad-hoc call makes (or reuses) a campaign and a contact as well as the booking.
        "ad_hoc": ["calls.add_scheduledcall", "campaigns.add_campaign", "contacts.add_contact"],
    }

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            return queryset.annotate(events_count=Count("events"))
        attempts = CallAttempt.objects.order_by("created_at", "attempt_number")
        return queryset.annotate(events_count=Count("events")).prefetch_related(
            "events", Prefetch("attempts", queryset=attempts)
        )

    def get_serializer_class(self):
        if self.action == "list":
            return ScheduledCallSerializer
        return ScheduledCallDetailSerializer

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    def _present(self, call, code=status.HTTP_200_OK):
        fresh = self.get_queryset().get(pk=call.pk)
        return Response(self.get_serializer(fresh).data, status=code)

    @idempotent
    def create(self, request, *args, **kwargs):
        body = ScheduledCallCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        call = schedule_call(by=request.user, now=timezone.now(), **body.validated_data)
        return self._present(call, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        call = self.get_object()
        body = ScheduledCallUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with _conflicts():
            call = edit_scheduled_call(
                call, changes=body.validated_data, now=timezone.now(), by=request.user
            )
        return self._present(call)

    def destroy(self, request, *args, **kwargs):
        call = self.get_object()
        with _conflicts():
            cancel_booking(call, scope="series", now=timezone.now(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _change(self, request, domain_function, body_class=ScopeSerializer):
        call = self.get_object()
        body = body_class(data=request.data)
        body.is_valid(raise_exception=True)
        with _conflicts():
            call = domain_function(call, now=timezone.now(), by=request.user, **body.validated_data)
        return self._present(call)

    @extend_schema(
        summary="Book an ad-hoc call to a number: a message, a survey, or both",
        description="No campaign to build: the call is booked in a campaign made for what it "
        "says (reused when the same message and questions are booked again), which places "
        "only its bookings. Answers 201 with the booking, whose `campaign` holds the results. "
        "A number on the do-not-call list is refused (409, code do_not_call); a bad number, "
        "survey or time is a 400.",
        request=AdHocCallSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: ScheduledCallDetailSerializer,
            409: error_response("The number is on the do-not-call list."),
            422: KEY_REUSED,
        },
    )
    @action(detail=False, methods=["post"], url_path="ad-hoc")
    @idempotent
    def ad_hoc(self, request):
        body = AdHocCallSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            call = book_ad_hoc_call(now=timezone.now(), by=request.user, **body.validated_data)
        except DoNotCall as exc:
            raise Conflict(str(exc), code="do_not_call") from exc
        return self._present(call, status.HTTP_201_CREATED)

    @_action_schema(
        "Pause the series, or hold its next occurrence",
        "series: scheduled -> paused (nothing is dialled until resumed). occurrence: the next "
        "occurrence is held and the series moves on to the one after.",
    )
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._change(request, pause_scheduled_call)

    @_action_schema(
        "Resume a paused series, or give back held occurrences",
        "series: paused -> scheduled; occurrences that passed while paused are skipped, not "
        "made up for. occurrence: held occurrences still in the future are placed again.",
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._change(request, resume_scheduled_call)

    @_action_schema(
        "Cancel the series, or only its next occurrence",
        "series: the call is cancelled for good, and its call in progress, if any, is hung "
        "up through the provider. occurrence: only the next occurrence is dropped (a one-off "
        "call with nothing after it ends cancelled).",
        request=CancelSerializer,
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._change(request, cancel_booking, CancelSerializer)
