from django.contrib import admin

from calls.models import Answer, CallAttempt, CallEvent, DiallerHeartbeat, ScheduledCall


class ReadOnlyAdminMixin:
    """Attempts, events and answers are written by the dialler and the provider only."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class CallEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = CallEvent
    fields = ["at", "kind", "message", "actor", "payload"]
    readonly_fields = fields
    extra = 0


class AnswerInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Answer
    fields = ["question", "value", "raw_input", "confidence", "answered_at"]
    readonly_fields = fields
    extra = 0


@admin.register(CallAttempt)
class CallAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "campaign",
        "contact",
        "attempt_number",
        "status",
        "answered_by",
        "duration",
        "error_code",
    ]
    list_filter = ["status", "answered_by", "campaign", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["contact__phone", "contact__name", "call_id", "provider_call_sid"]
    list_select_related = ["campaign", "contact"]
    date_hierarchy = "created_at"
    inlines = [AnswerInline, CallEventInline]
    show_full_result_count = False


@admin.register(CallEvent)
class CallEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "kind", "attempt", "scheduled_call", "actor", "message"]
    list_filter = ["kind"]
    search_fields = ["attempt__call_id", "message"]
    list_select_related = ["attempt", "scheduled_call"]
    show_full_result_count = False


@admin.register(Answer)
class AnswerAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["answered_at", "question", "value", "confidence", "attempt"]
    list_filter = ["question__campaign"]
    search_fields = ["value", "attempt__contact__phone"]
    list_select_related = ["question", "attempt"]


@admin.register(ScheduledCall)
class ScheduledCallAdmin(admin.ModelAdmin):
    list_display = ["contact", "next_run_at", "timezone", "rrule", "status", "retries_done"]
    list_filter = ["status"]
    search_fields = ["contact__phone", "contact__name", "note"]
    list_select_related = ["contact"]
    raw_id_fields = ["contact"]
    readonly_fields = ["status", "next_run_at", "retries_done", "created_by", "created_at"]
    inlines = [CallEventInline]


@admin.register(DiallerHeartbeat)
class DiallerHeartbeatAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["last_tick_at", "worker", "report"]
