"""The operator's own settings page in the admin: the time zone times are shown in."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from voicesurvey.accounts.timezones import (
    SESSION_KEY,
    operator_zone,
    set_operator_zone,
    zone_names,
)


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(
        label=gettext_lazy("Show times in"),
        required=False,
        help_text=gettext_lazy(
            "Every time in the back office is shown in this zone; the callee's own local time "
            "is shown beside it on contacts and calls."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        server = _("The server's zone (%(zone)s)") % {"zone": settings.TIME_ZONE}
        self.fields["time_zone"].choices = [("", server)] + [(z, z) for z in zone_names()]


def time_zone_view(request):
    """Any staff user sets their own zone (no permission beyond being signed in to the admin,
    as for changing one's password)."""
    if request.method == "POST":
        form = TimeZoneForm(request.POST)
        if form.is_valid():
            try:
                set_operator_zone(user=request.user, zone=form.cleaned_data["time_zone"])
            except ValidationError as exc:
                form.add_error("time_zone", exc.message_dict["time_zone"])
            else:
                zone = request.session[SESSION_KEY] = operator_zone(request.user)
                messages.success(request, _("Times are now shown in %(zone)s.") % {"zone": zone})
                return redirect("admin:index")
    else:
        form = TimeZoneForm(initial={"time_zone": operator_zone(request.user)})
    context = {
        **admin.site.each_context(request),
        "title": _("Your time zone"),
        "form": form,
    }
    return TemplateResponse(request, "admin/voicesurvey/time_zone.html", context)
