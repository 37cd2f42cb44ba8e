"""API for calls: attempts with their events, answers, stats and the results export."""

import django_filters
from django.http import StreamingHttpResponse
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

from calls.models import Answer, CallAttempt, CallEvent
from calls.reports.results import iter_results_csv
from calls.reports.stats import DEFINITIONS, OUTCOMES, campaign_stats
from campaigns.models import Campaign
from contacts.models import Contact
from voicesurvey.api_input import DateTimeFilter, FilterSet

# --- serializers ------------------------------------------------------------------------------


class CallEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = CallEvent
        fields = ["id", "kind", "message", "payload", "actor", "at"]


class CallAttemptSerializer(serializers.ModelSerializer):
    outcome = serializers.CharField(
        read_only=True,
        help_text="What the retry rules saw: "
        + ", ".join(o for o in OUTCOMES if o != "in_progress")
        + " (live attempts read failed until they end).",
    )
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
        fields = ["campaign", "contact", "status", "answered_by", "error_code"]


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

    @extend_schema(summary="Figures over every campaign", responses={200: StatsSerializer})
    def list(self, request):
        return Response(campaign_stats())


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
