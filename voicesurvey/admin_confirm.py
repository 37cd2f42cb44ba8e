"""An intermediate "Are you sure?" page for the admin actions that cannot be undone, as
Django's own bulk delete has: the action runs only on the confirming POST."""

from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

CONFIRMED = "confirmed"


def confirmed_or_ask(modeladmin, request, queryset, *, action: str, question: str, consequence):
    """None once the user confirmed (the action then goes on), else the page that asks."""
    if request.POST.get(CONFIRMED) == "yes":
        return None
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Are you sure?"),
        "opts": opts,
        "queryset": queryset,
        "action": action,
        "question": question,
        "consequence": consequence,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "confirmed_field": CONFIRMED,
    }
    return TemplateResponse(request, "admin/voicesurvey/confirm_action.html", context)
