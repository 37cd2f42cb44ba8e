from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from voicesurvey.accounts.models import ApiToken, new_key


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are listed (owner, name, prefix, created) and revoked here, and issued: the key
    is shown once, in the message after the save. A token is never edited: revoke it and issue
    another. Only a superuser issues tokens for someone else (a token acts as its owner)."""

    list_display = ["key_prefix", "user", "name", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["user__username", "name", "prefix"]
    list_select_related = ["user"]
    readonly_fields = ["key_prefix", "created_at"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name"]
        return ["user", "name", "key_prefix", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            model = db_field.remote_field.model
            kwargs["queryset"] = model.objects.filter(pk=request.user.pk)
            kwargs["initial"] = request.user.pk
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=_("Key starts with"), ordering="prefix")
    def key_prefix(self, obj):
        return f"{obj.prefix}…"

    def save_model(self, request, obj, form, change):
        key = new_key()
        obj.set_key(key)
        super().save_model(request, obj, form, change)
        self.message_user(
            request,
            _("The key of this token, shown only now (copy it; it cannot be read again): %s") % key,
            messages.WARNING,
        )
