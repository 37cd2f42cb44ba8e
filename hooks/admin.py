"""Admin for outbound webhooks: subscriptions (the secret shown once, in the message after the
creation) and the delivery log, with "send again". Model permissions, as in the API."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from hooks.editing import FIELDS, clean_event_types, clean_url, save_subscription, send_again
from hooks.models import EVENT_TYPES, WebhookDelivery, WebhookSubscription


class SubscriptionForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https", label=_("URL"))
    event_types = forms.MultipleChoiceField(
        choices=[(name, f"{name}: {what}") for name, what in EVENT_TYPES.items()],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = WebhookSubscription
        fields = list(FIELDS)

    def clean_url(self):
        return self._domain(clean_url, "url")

    def clean_event_types(self):
        return self._domain(clean_event_types, "event_types")

    def _domain(self, check, name):
        try:
            return check(self.cleaned_data[name])
        except ValidationError as exc:
            raise ValidationError(exc.message_dict[name]) from None


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionForm
    list_display = [
        "url",
        "events",
        "enabled",
        "consecutive_failures",
        "disabled_at",
        "disabled_reason",
        "deliveries_link",
        "created_at",
    ]
    list_filter = ["enabled"]
    search_fields = ["url", "description"]
    list_select_related = ["created_by"]
    readonly_fields = [
        "masked_secret",
        "consecutive_failures",
        "failing_since",
        "disabled_at",
        "disabled_reason",
        "created_by",
        "created_at",
        "updated_at",
    ]

    def get_fields(self, request, obj=None):
        if obj is None:
            return list(FIELDS)
        return [*FIELDS, *self.readonly_fields]

    @admin.display(description=_("Events"))
    def events(self, obj):
        return ", ".join(obj.event_types)

    @admin.display(description=_("Secret"))
    def masked_secret(self, obj):
        return f"{obj.masked_secret} (shown once, when the subscription was made)"

    @admin.display(description=_("Deliveries"))
    def deliveries_link(self, obj):
        url = reverse("admin:hooks_webhookdelivery_changelist")
        return format_html('<a href="{}?subscription__id__exact={}">log</a>', url, obj.pk)

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in FIELDS if name in form.cleaned_data}
        if change:
            obj.refresh_from_db(fields=["enabled"])  # what it was, for save_subscription
        save_subscription(subscription=obj, fields=fields, by=request.user)
        if not change:
            self.message_user(
                request,
                _(
                    "The signing secret of this subscription, shown only now (copy it; it "
                    "cannot be read again): %s"
                )
                % obj.secret,
                messages.WARNING,
            )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log. Rows are written by the sender only; "send again" needs the change
    permission (as the API's resend)."""

    list_display = [
        "created_at",
        "event_type",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "subscription",
        "event_id",
    ]
    list_filter = ["status", "event_type", "subscription", "created_at"]
    search_fields = ["event_id"]
    list_select_related = ["subscription"]
    actions = ["resend"]
    fields = [
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
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # The list's action asks without an object; a delivery itself is never edited.
        return obj is None and super().has_change_permission(request, obj)

    @admin.action(description=_("Send again"), permissions=["change"])
    def resend(self, request, queryset):
        queued = send_again(queryset)
        disabled = queryset.filter(subscription__enabled=False).count()
        self.message_user(request, _("%d deliveries queued to be sent again now.") % queued)
        if disabled:
            self.message_user(
                request,
                _(
                    "%d of them belong to a disabled subscription: they go out once it is "
                    "enabled again."
                )
                % disabled,
                messages.WARNING,
            )
