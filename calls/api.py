"""API for calls: attempts with their events, answers, stats and the results export."""

import django_filters
from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from calls.dialler.cancel import cancel_campaign
from calls.dialler.limits import account_of, current_limits, save_provider_account
from calls.models import Answer, CallAttempt, CallEvent, ProviderAccount
from calls.reports.results import iter_results_csv
from calls.reports.stats import DEFINITIONS, OUTCOMES, campaign_stats
from campaigns.api import TRANSITION_RESPONSES
from campaigns.models import Campaign
from contacts.models import Contact
from voicesurvey.api_common import refuse_foreign_paging
from voicesurvey.api_input import DateTimeFilter, FilterSet
from voicesurvey.api_schema import error_response

# --- serializers ------------------------------------------------------------------------------


class CallEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = CallEvent
        fields = ["id", "kind", "message", "payload", "actor", "at"]


OUTCOME_HELP = (
    "What the retry rules saw: "
    + ", ".join(o for o in OUTCOMES if o != "in_progress")
    + " (live attempts read failed until they end)."
)


class CallAttemptSerializer(serializers.ModelSerializer):
    outcome = serializers.CharField(read_only=True, help_text=OUTCOME_HELP)
    reached_provider = serializers.BooleanField(read_only=True)

    class Meta:
        model = CallAttempt
        fields = [
            "id",
            "campaign",
            "contact",
            "scheduled_call",
            "attempt_number",
            "provider",
            "provider_call_sid",
            "status",
            "answered_by",
            "outcome",
            "reached_provider",
            "caller_id",
            "machine_detection",
            "survey_finished",
            "opted_out",
            "callback_requested_for",
            "error_code",
            "error_message",
            "created_at",
            "dialled_at",
            "answered_at",
            "ended_at",
            "duration",
        ]
        read_only_fields = fields


class BookedAttemptSerializer(serializers.ModelSerializer):
    """An attempt as a scheduled call's detail shows it: what the provider made of the call."""

    outcome = serializers.CharField(read_only=True, help_text=OUTCOME_HELP)

    class Meta:
        model = CallAttempt
        fields = [
            "id",
            "attempt_number",
            "provider",
            "provider_call_sid",
            "status",
            "outcome",
            "error_code",
            "error_message",
            "created_at",
            "dialled_at",
            "ended_at",
            "duration",
        ]
        read_only_fields = fields


class CallAttemptDetailSerializer(CallAttemptSerializer):
    events = CallEventSerializer(many=True, read_only=True)

    class Meta(CallAttemptSerializer.Meta):
        fields = CallAttemptSerializer.Meta.fields + ["events"]
        read_only_fields = fields


class AnswerSerializer(serializers.ModelSerializer):
    contact = serializers.IntegerField(source="attempt.contact_id", read_only=True)
    campaign = serializers.IntegerField(source="attempt.campaign_id", read_only=True)
    question_position = serializers.IntegerField(source="question.position", read_only=True)

    class Meta:
        model = Answer
        fields = [
            "id",
            "campaign",
            "contact",
            "attempt",
            "question",
            "question_position",
            "raw_input",
            "value",
            "confidence",
            "answered_at",
        ]
        read_only_fields = fields


_count_map = serializers.DictField(child=serializers.IntegerField())

StatsSerializer = inline_serializer(
    "Stats",
    {
        "campaign_id": serializers.IntegerField(allow_null=True),
        "contacts": inline_serializer(
            "ContactStats",
            {
                "total": serializers.IntegerField(),
                "pending": serializers.IntegerField(
                    help_text="Still to be done: pending, in_progress, not_reached."
                ),
                "completed": serializers.IntegerField(help_text="Completed the survey."),
                "failed": serializers.IntegerField(
                    help_text="Will not be called again: refused, exhausted, invalid. "
                    "Done = completed + failed."
                ),
                "excluded": serializers.IntegerField(
                    help_text="On the do-not-call list at import: never called, not callable."
                ),
                "by_state": _count_map,
            },
        ),
        "attempts": inline_serializer(
            "AttemptStats",
            {
                "total": serializers.IntegerField(),
                "reached_provider": serializers.IntegerField(
                    help_text="Dialled: calls the provider put through."
                ),
                "answered": serializers.IntegerField(
                    help_text="Calls a person answered (not an answering machine)."
                ),
                "by_status": _count_map,
                "by_outcome": _count_map,
            },
        ),
        "answer_rate": serializers.FloatField(
            allow_null=True, help_text=f"{DEFINITIONS['answer_rate']} A fraction from 0 to 1."
        ),
        "completion_rate": serializers.FloatField(
            allow_null=True,
            help_text=f"{DEFINITIONS['completion_rate']} A fraction from 0 to 1.",
        ),
        "talk_time": inline_serializer(
            "TalkTime",
            {
                "total_seconds": serializers.IntegerField(),
                "average_seconds": serializers.FloatField(allow_null=True),
            },
        ),
    },
)


# --- filters ----------------------------------------------------------------------------------


class CallAttemptFilter(FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=CallAttempt.Status.choices)
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = DateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = CallAttempt
        fields = ["campaign", "contact", "scheduled_call", "status", "answered_by", "error_code"]


class AnswerFilter(FilterSet):
    campaign = django_filters.ModelChoiceFilter(
        field_name="attempt__campaign", queryset=Campaign.objects.all()
    )
    contact = django_filters.ModelChoiceFilter(
        field_name="attempt__contact", queryset=Contact.objects.all()
    )
    answered_after = DateTimeFilter(field_name="answered_at", lookup_expr="gte")
    answered_before = DateTimeFilter(field_name="answered_at", lookup_expr="lt")

    class Meta:
        model = Answer
        fields = ["campaign", "contact", "attempt", "question"]


# --- views ------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List call attempts"),
    retrieve=extend_schema(summary="Get a call attempt with its events"),
)
class CallAttemptViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = CallAttempt.objects.all()
    filterset_class = CallAttemptFilter
    search_fields = ["provider_call_sid", "call_id"]
    ordering_fields = ["created_at", "attempt_number", "duration", "status"]
    ordering = ["-created_at"]

    def get_queryset(self):
        if self.action == "retrieve":
            return CallAttempt.objects.prefetch_related("events")
        return super().get_queryset()

    def get_serializer_class(self):
        return CallAttemptDetailSerializer if self.action == "retrieve" else CallAttemptSerializer


@extend_schema_view(
    list=extend_schema(summary="List survey answers"),
    retrieve=extend_schema(summary="Get a survey answer"),
)
class AnswerViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Answer.objects.select_related("attempt", "question")
    serializer_class = AnswerSerializer
    filterset_class = AnswerFilter
    ordering_fields = ["answered_at", "id"]
    ordering = ["answered_at", "id"]


class StatsViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Figures over every campaign (per campaign: /campaigns/{id}/stats/)."""

    queryset = Campaign.objects.none()  # for the model permission: campaigns.view_campaign
    pagination_class = None
    filter_backends: list = []
    list_answers_one_object = True  # (voicesurvey.api_schema) documented as an object

    @extend_schema(
        summary="Figures over every campaign",
        responses={
            200: StatsSerializer,
            400: error_response("Paging parameters (limit, offset…): it is one object."),
        },
    )
    def list(self, request):
        refuse_foreign_paging(request)  # one object, but a list endpoint: never ignored
        return Response(campaign_stats())


class CampaignCancelAction:
    """The campaign's `cancel` action, which also cancels its booked calls and hangs up its
    live calls; mixed into the campaign viewset by voicesurvey/api.py."""

    @extend_schema(
        request=None,
        responses=TRANSITION_RESPONSES,
        summary="Cancel the campaign",
        description="Any status but completed or cancelled -> cancelled. Its booked calls are "
        "cancelled and its live calls hung up through the provider (an event on each attempt).",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        campaign = self.get_object()
        cancel_campaign(campaign, now=timezone.now(), by=request.user)  # IllegalTransition: 409
        campaign.refresh_from_db()
        return Response(self.get_serializer(campaign).data)


class CampaignResultsActions:
    """The campaign's `stats` and `results.csv` actions; mixed into the campaign viewset by
    voicesurvey/api.py (campaigns must not import calls)."""

    action_permissions = {
        "stats": ["campaigns.view_campaign"],
        "results_csv": ["campaigns.view_campaign", "contacts.view_contact", "calls.view_answer"],
    }

    @extend_schema(summary="The campaign's figures", responses={200: StatsSerializer})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def stats(self, request, pk=None):
        campaign = self.get_object()
        return Response(campaign_stats(campaign.pk))

    @extend_schema(
        summary="The campaign's results as CSV (streamed)",
        description="One row per contact: phone, name, external_id, state, attempts_count, "
        "last_attempt_at, last_outcome, then one column per question with the latest answer.",
        responses={
            (200, "text/csv"): OpenApiResponse(
                response=OpenApiTypes.STR, description="CSV, UTF-8, with a header row."
            )
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="results.csv",
        filter_backends=[],
        pagination_class=None,
    )
    def results_csv(self, request, pk=None):
        campaign = self.get_object()
        response = StreamingHttpResponse(iter_results_csv(campaign), content_type="text/csv")
        response["Content-Disposition"] = (
            f'attachment; filename="campaign-{campaign.pk}-results.csv"'
        )
        return response


# --- limits an operator changes without a restart ----------------------------------------------


class ProviderAccountSerializer(serializers.ModelSerializer):
    in_force = serializers.SerializerMethodField(
        help_text="Whether the dialler calls through this account now (its limits apply)."
    )
    updated_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = ProviderAccount
        fields = [
            "id",
            "provider",
            "account",
            "max_concurrent_calls",
            "calls_per_second",
            "in_force",
            "updated_by",
            "updated_at",
        ]
        read_only_fields = ["updated_at"]

    def get_in_force(self, account) -> bool:
        if "in_force_row" not in self.context:  # once per response, after any save
            self.context["in_force_row"] = current_limits(settings.TELEPHONY_PROVIDER).row
        row = self.context["in_force_row"]
        return row is not None and row.pk == account.pk

    def save(self, **kwargs):
        self.instance = save_provider_account(
            account=self.instance or ProviderAccount(),
            fields=dict(self.validated_data),
            by=kwargs.get("by"),
        )
        return self.instance


LimitsSerializer = inline_serializer(
    "LimitsInForce",
    {
        "provider": serializers.CharField(help_text="TELEPHONY_PROVIDER."),
        "account": serializers.CharField(help_text="The account the settings name ('' if none)."),
        "max_concurrent_calls": serializers.IntegerField(),
        "calls_per_second": serializers.FloatField(),
        "provider_account": serializers.IntegerField(
            allow_null=True, help_text="The row they come from; null: the settings."
        ),
    },
)


@extend_schema_view(
    list=extend_schema(summary="List provider accounts and their dialling limits"),
    retrieve=extend_schema(summary="Get a provider account's dialling limits"),
    create=extend_schema(summary="Set the dialling limits of a provider account"),
    update=extend_schema(summary="Replace a provider account's dialling limits"),
    partial_update=extend_schema(summary="Change a provider account's dialling limits"),
    destroy=extend_schema(summary="Remove a provider account's limits (the settings apply)"),
)
class ProviderAccountViewSet(viewsets.ModelViewSet):
    """The global concurrency cap and the calls-per-second pace, per provider account. The
    dialler reads them on every tick: a change holds from the next tick, without a restart. A
    limit left null, or an account with no row, takes its setting
    (DIALLER_GLOBAL_MAX_CONCURRENT_CALLS, DIALLER_CALLS_PER_SECOND)."""

    queryset = ProviderAccount.objects.select_related("updated_by")
    serializer_class = ProviderAccountSerializer
    filterset_fields = ["provider"]
    ordering_fields = ["provider", "account", "updated_at", "id"]
    ordering = ["provider", "account", "id"]

    def perform_create(self, serializer):
        serializer.save(by=self.request.user)

    def perform_update(self, serializer):
        serializer.save(by=self.request.user)

    @extend_schema(
        summary="The dialling limits in force now",
        description="For the configured provider and account: its row's limits, or the "
        "settings where the row leaves one empty or there is none.",
        responses={200: LimitsSerializer},
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def current(self, request):
        provider = settings.TELEPHONY_PROVIDER
        limits = current_limits(provider)
        return Response(
            {
                "provider": provider,
                "account": account_of(provider),
                "max_concurrent_calls": limits.max_concurrent_calls,
                "calls_per_second": limits.calls_per_second,
                "provider_account": limits.row.pk if limits.row else None,
            }
        )
