"""API for outbound webhooks: subscriptions (CRUD; the secret is in the create answer only) and
the delivery log (read-only, with a resend action)."""

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from hooks.editing import clean_url, save_subscription, send_again
from hooks.models import EVENT_TYPES, WebhookDelivery, WebhookSubscription
from voicesurvey.api_input import DateTimeFilter, FilterSet
from voicesurvey.api_schema import error_response


class SubscriptionSerializer(serializers.ModelSerializer):
    url = serializers.URLField(
        max_length=2000,
        help_text="http(s) URL the events are POSTed to. Loopback and private addresses are "
        "refused unless the WEBHOOK_ALLOW_PRIVATE_URLS setting allows them.",
    )
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=list(EVENT_TYPES)),
        allow_empty=False,
        help_text="The events to send: " + "; ".join(f"`{k}`: {v}" for k, v in EVENT_TYPES.items()),
    )
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = WebhookSubscription
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "enabled",
            "consecutive_failures",
            "failing_since",
            "disabled_at",
            "disabled_reason",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "consecutive_failures",
            "failing_since",
            "disabled_at",
            "disabled_reason",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {
            "enabled": {
                "help_text": "Off: no deliveries are made. Turned off by the sender after "
                "repeated failures (see disabled_reason); turning it on again sends what waits."
            }
        }

    def validate_url(self, value):
        try:
            return clean_url(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["url"]) from None

    def save(self, **kwargs):
        self.instance = save_subscription(
            subscription=self.instance or WebhookSubscription(),
            fields=dict(self.validated_data),
            by=kwargs.get("by"),
        )
        return self.instance


class NewSubscriptionSerializer(SubscriptionSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The signing secret (Voicesurvey-Signature). Shown only in this answer: "
        "store it now, it cannot be read again.",
    )

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "secret"]


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "subscription",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "next_attempt_at",
            "created_at",
            "last_attempt_at",
            "delivered_at",
            "payload",
        ]
        read_only_fields = fields


class SubscriptionFilter(FilterSet):
    class Meta:
        model = WebhookSubscription
        fields = ["enabled"]


class DeliveryFilter(FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=WebhookDelivery.Status.choices)
    event_type = django_filters.ChoiceFilter(choices=[(k, k) for k in EVENT_TYPES])
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = DateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = WebhookDelivery
        fields = ["subscription", "status", "event_type", "event_id"]


@extend_schema_view(
    list=extend_schema(summary="List webhook subscriptions"),
    retrieve=extend_schema(summary="Get a webhook subscription"),
    create=extend_schema(
        summary="Subscribe an endpoint to events",
        description="The answer holds the signing `secret`, the only time it is shown.",
        responses={201: NewSubscriptionSerializer},
    ),
    update=extend_schema(summary="Replace a webhook subscription"),
    partial_update=extend_schema(summary="Change a webhook subscription"),
    destroy=extend_schema(summary="Delete a webhook subscription and its delivery log"),
)
class WebhookSubscriptionViewSet(viewsets.ModelViewSet):
    """Endpoints of API clients that events are POSTed to, signed with the subscription's
    secret (docs/webhooks-out.md)."""

    queryset = WebhookSubscription.objects.select_related("created_by")
    serializer_class = SubscriptionSerializer
    filterset_class = SubscriptionFilter
    search_fields = ["url", "description"]
    ordering_fields = ["id", "created_at", "url"]
    ordering = ["-created_at", "-id"]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = serializer.save(by=request.user)
        return Response(NewSubscriptionSerializer(subscription).data, status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.save(by=self.request.user)


@extend_schema_view(
    list=extend_schema(summary="List webhook deliveries (the delivery log)"),
    retrieve=extend_schema(summary="Get a webhook delivery with the body sent"),
)
class WebhookDeliveryViewSet(viewsets.ReadOnlyModelViewSet):
    """Each event sent to each subscription: its status, attempts and the receiver's last
    answer."""

    queryset = WebhookDelivery.objects.all()
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter
    ordering_fields = ["id", "created_at", "next_attempt_at", "status"]
    ordering = ["-created_at", "-id"]
    action_permissions = {"resend": ["hooks.change_webhookdelivery"]}

    @extend_schema(
        request=None,
        responses={200: DeliverySerializer, 404: error_response("No such delivery.")},
        summary="Send a delivery again",
        description="Queues it to be sent now, whatever its status (same event id). One that "
        "had run out of retries is tried once more.",
    )
    @action(detail=True, methods=["post"])
    def resend(self, request, pk=None):
        delivery = self.get_object()
        send_again([delivery])
        delivery.refresh_from_db()
        return Response(self.get_serializer(delivery).data)
