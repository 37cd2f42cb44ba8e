"""API for campaigns: CRUD with their questions, and the status actions."""

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from campaigns.editing import QUESTION_FIELDS, save_campaign
from campaigns.models import Campaign, Question
from voicesurvey.api_input import DateTimeFilter, FilterSet
from voicesurvey.api_schema import error_response


class QuestionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Question
        fields = ["id", *QUESTION_FIELDS]
        # Uniqueness of positions is checked across the list (campaigns.editing).
        validators: list = []


class CampaignSerializer(serializers.ModelSerializer):
    questions = QuestionSerializer(
        many=True,
        required=False,
        help_text="The survey, in order. On update, the questions given replace the list "
        "(matched by position); leave the field out to keep them.",
    )
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    ad_hoc = serializers.BooleanField(
        source="is_ad_hoc",
        read_only=True,
        help_text="Made for ad-hoc calls (POST /api/v1/scheduled-calls/ad-hoc/): it places "
        "only its bookings and never completes by itself.",
    )

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "description",
            "status",
            "start_at",
            "end_at",
            "timezone",
            "window_policy",
            "window_start",
            "window_end",
            "weekdays",
            "max_attempts",
            "retry_busy_minutes",
            "retry_no_answer_minutes",
            "retry_failed_minutes",
            "retry_machine_minutes",
            "completion_max_attempts",
            "completion_retry_minutes",
            "max_concurrent_calls",
            "caller_id",
            "machine_detection",
            "machine_policy",
            "voicemail_message",
            "intro_message",
            "closing_message",
            "voice",
            "language",
            "opt_out_key",
            "callback_key",
            "callback_delay_minutes",
            "opt_out_message",
            "callback_message",
            "questions",
            "ad_hoc",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["status", "created_at", "updated_at"]

    def validate_weekdays(self, value):
        if not isinstance(value, list) or any(
            isinstance(d, bool) or not isinstance(d, int) for d in value
        ):
            raise serializers.ValidationError(
                "Give a list of weekday numbers, 0 (Monday) to 6 (Sunday)."
            )
        return value

    def save(self, **kwargs):
        fields = dict(self.validated_data)
        questions = fields.pop("questions", None)
        campaign = self.instance or Campaign()
        self.instance = save_campaign(
            campaign=campaign, fields=fields, questions=questions, by=kwargs.get("by")
        )
        return self.instance


class CampaignFilter(FilterSet):
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = DateTimeFilter(field_name="created_at", lookup_expr="lt")
    ad_hoc = django_filters.BooleanFilter(method="filter_ad_hoc", label="Made for ad-hoc calls")

    def filter_ad_hoc(self, queryset, name, value):
        return queryset.exclude(ad_hoc_key="") if value else queryset.filter(ad_hoc_key="")

    class Meta:
        model = Campaign
        fields = ["status", "window_policy"]


TRANSITION_RESPONSES = {
    200: CampaignSerializer,
    409: error_response("The campaign's status does not allow this action."),
}


def _transition_schema(action_name: str, what: str):
    return extend_schema(
        request=None,
        responses=TRANSITION_RESPONSES,
        summary=f"{action_name.capitalize()} the campaign",
        description=what,
    )


@extend_schema_view(
    list=extend_schema(summary="List campaigns"),
    retrieve=extend_schema(summary="Get a campaign with its questions"),
    create=extend_schema(summary="Create a campaign (questions may be given inline)"),
    update=extend_schema(summary="Replace a campaign"),
    partial_update=extend_schema(summary="Change some fields of a campaign"),
    destroy=extend_schema(summary="Delete a campaign with its contacts and calls"),
)
class CampaignViewSet(viewsets.ModelViewSet):
    """Campaigns. Status changes only through the actions (start, pause, resume, cancel), which
    go through the campaign's status machine: an illegal change answers 409."""

    queryset = Campaign.objects.select_related("created_by").prefetch_related("questions")
    serializer_class = CampaignSerializer
    filterset_class = CampaignFilter
    search_fields = ["name", "description"]
    ordering_fields = ["created_at", "name", "status", "start_at", "id"]
    ordering = ["-created_at", "-id"]
    action_permissions = {
        name: ["campaigns.change_campaign"] for name in ("start", "pause", "resume", "cancel")
    }

    def perform_create(self, serializer):
        serializer.save(by=self.request.user)

    def _transition(self, request, name: str):
        campaign = self.get_object()
        campaign.transition(name)  # IllegalTransition -> 409 (voicesurvey.api_errors)
        campaign.refresh_from_db()
        return Response(self.get_serializer(campaign).data)

    @_transition_schema("start", "Draft or scheduled -> running. The campaign needs questions.")
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        return self._transition(request, "start")

    @_transition_schema("pause", "Running -> paused: no new calls; calls in progress finish.")
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._transition(request, "pause")

    @_transition_schema("resume", "Paused -> running.")
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._transition(request, "resume")

    @_transition_schema("cancel", "Any status but completed or cancelled -> cancelled.")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._transition(request, "cancel")
