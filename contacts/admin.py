from django.contrib import admin

from contacts.models import Contact, Exclusion


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = [
        "phone",
        "name",
        "campaign",
        "state",
        "attempts_count",
        "last_attempt_at",
        "next_attempt_at",
        "timezone_key",
    ]
    list_filter = ["state", "campaign"]
    search_fields = ["phone", "name", "external_id"]
    list_select_related = ["campaign"]
    raw_id_fields = ["campaign"]
    readonly_fields = [
        "timezone_key",
        "attempts_count",
        "last_attempt_number",
        "completion_attempts_count",
        "last_attempt_at",
        "created_at",
        "updated_at",
    ]
    show_full_result_count = False  # COUNT(*) over millions of contacts on every page is slow


@admin.register(Exclusion)
class ExclusionAdmin(admin.ModelAdmin):
    list_display = ["phone", "scope", "source", "reason", "created_by", "created_at", "expires_at"]
    list_filter = ["source", "campaign"]
    search_fields = ["phone", "reason"]
    list_select_related = ["campaign", "created_by"]
    readonly_fields = ["created_by", "created_at"]

    @admin.display(description="Scope")
    def scope(self, obj):
        return obj.campaign.name if obj.campaign_id else "All campaigns"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
