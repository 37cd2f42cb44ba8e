"""The admin's form to book or change a scheduled call.

It books through `schedule_call` and edits through `edit_scheduled_call`, so the admin checks
exactly what the API checks: `clean` tries the change in a savepoint that is rolled back (the
domain's refusals show on the form), and the admin's `save_model` then does it for real.

The repetition is chosen, not typed: how often, on which days, until when
(`calls.booking.recurrence` writes the rule, shown read-only beside). The zone defaults to the
contact's own."""

import datetime as dt
from zoneinfo import ZoneInfo

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from calls.booking.editing import EDITABLE_FIELDS, edit_scheduled_call
from calls.booking.recurrence import build_rrule, read_rrule
from calls.booking.scheduling import MAX_SCAN, IllegalScheduledCallTransition, schedule_call
from calls.models import ScheduledCall
from campaigns.forms import WeekdaysField
from contacts.models import Contact

REPEAT_CHOICES = [
    ("", _("Does not repeat")),
    ("DAILY", _("Every day")),
    ("WEEKLY", _("Every week")),
    ("MONTHLY", _("Every month (same day of the month)")),
]
KEEP = "keep"  # a stored rule the form cannot show: kept unless another repetition is chosen
ENDS_CHOICES = [
    ("never", _("Never")),
    ("until", _("On a day (included)")),
    ("count", _("After a number of calls")),
]
REPETITION_FIELDS = ("repeat", "interval", "days", "ends", "until", "count")
BOOKING_FIELDS = (
    "contact",
    "timezone",
    "run_at",
    "note",
    "max_retries",
    "retry_delay_minutes",
    "misfire_grace_seconds",
)


class WallClockField(forms.SplitDateTimeField):
    """The first call's date and time as typed, in no zone: the call's own zone is applied by
    the domain (a time that does not exist in the operator's zone may exist in the call's)."""

    def compress(self, data_list):
        with timezone.override(dt.UTC):
            value = super().compress(data_list)
        return value.replace(tzinfo=None) if value is not None else None


class ScheduledCallForm(forms.ModelForm):
    repeat = forms.ChoiceField(label=_("Repeat"), choices=REPEAT_CHOICES, required=False)
    interval = forms.IntegerField(
        label=_("Every"),
        required=False,
        min_value=1,
        max_value=365,
        initial=1,
        help_text=_("1: every day, week or month; 2: every other one…"),
    )
    days = WeekdaysField(
        label=_("On"),
        required=False,
        help_text=_("Weekly calls: the days; none ticked: the first call's weekday."),
    )
    ends = forms.ChoiceField(
        label=_("Ends"),
        choices=ENDS_CHOICES,
        initial="never",
        required=False,
        widget=forms.RadioSelect,
    )
    until = forms.DateField(
        label=_("Last day"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("In the call's zone; a call on that day is still made."),
    )
    # Past MAX_SCAN occurrences the series is not followed any further.
    count = forms.IntegerField(
        label=_("Number of calls"), required=False, min_value=1, max_value=MAX_SCAN
    )

    class Meta:
        model = ScheduledCall
        fields = list(BOOKING_FIELDS)
        help_texts = {
            "run_at": _("Wall-clock time in the zone above (the first call)."),
            "timezone": _("IANA zone, e.g. Europe/Paris; empty: the contact's own zone."),
        }

    class Media:
        js = ["calls/recurrence.js"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("max_retries", "retry_delay_minutes", "misfire_grace_seconds"):
            # The model's bounds, checked per field: `clean` tries the booking in the database.
            if name in self.fields:
                bounds = ScheduledCall._meta.get_field(name).validators
                self.fields[name].validators = [*self.fields[name].validators, *bounds]
        if "timezone" not in self.fields:
            return  # shown read-only, to who may not change it
        self.fields["timezone"].required = False
        typed = self.fields["run_at"]
        self.fields["run_at"] = WallClockField(
            widget=typed.widget, label=typed.label, help_text=typed.help_text
        )
        call = self.instance
        if call.pk:
            # run_at as it was booked: wall-clock time in the call's own zone.
            zone = ZoneInfo(call.timezone)
            self.initial["run_at"] = call.run_at.astimezone(zone).replace(tzinfo=None)
            choices = read_rrule(call.rrule, zone=call.timezone)
            if choices is None:
                self.fields["repeat"].choices = [
                    (KEEP, _("As set through the API (the rule below)")),
                    *REPEAT_CHOICES,
                ]
                self.initial["repeat"] = KEEP
            else:
                self.initial.update(
                    repeat=choices["frequency"],
                    interval=choices["interval"],
                    days=choices["weekdays"],
                    ends="until" if choices["until"] else "count" if choices["count"] else "never",
                    until=choices["until"],
                    count=choices["count"],
                )
        else:
            contact = self._initial_contact()
            if contact is not None and not self.initial.get("timezone"):
                self.initial["timezone"] = contact.zones[0]

    def _initial_contact(self) -> Contact | None:
        wanted = self.initial.get("contact")
        if wanted and str(wanted).isdigit():
            return Contact.objects.filter(pk=int(wanted)).first()
        return None

    def clean_timezone(self):
        return (self.cleaned_data.get("timezone") or "").strip()

    def clean(self):
        data = super().clean()
        self._build_rule(data)
        if self.errors:
            return data
        if not data.get("timezone"):
            contact = data.get("contact") or self.instance.contact
            data["timezone"] = contact.zones[0]
        try:
            with transaction.atomic():
                self.save_through_domain(by=None)
                transaction.set_rollback(True)
        except ValidationError as exc:
            for field, problems in exc.message_dict.items():
                where = field if field in self.fields else "repeat" if field == "rrule" else None
                self.add_error(where, problems)
        except IllegalScheduledCallTransition as exc:
            self.add_error(None, str(exc))
        return data

    def _build_rule(self, data) -> None:
        """data["rrule"] from the repetition fields; a rule the form cannot show is kept."""
        repeat = data.get("repeat", "")
        if repeat == KEEP:
            data["rrule"] = self.instance.rrule
            return
        ends = data.get("ends")
        if repeat and ends == "until" and not data.get("until"):
            self.add_error("until", _("Give the last day, or choose another end."))
        if repeat and ends == "count" and not data.get("count"):
            self.add_error("count", _("Give the number of calls, or choose another end."))
        try:
            data["rrule"] = build_rrule(
                frequency=repeat,
                interval=data.get("interval") or 1,
                weekdays=data.get("days") or [],
                until=data.get("until") if ends == "until" else None,
                count=data.get("count") if ends == "count" else None,
            )
        except ValueError as exc:
            self.add_error("repeat", str(exc))

    def timing_changed(self) -> bool:
        return any(name in self.changed_data for name in REPETITION_FIELDS)

    def save_through_domain(self, *, by) -> ScheduledCall:
        data, now = self.cleaned_data, timezone.now()
        if self.instance.pk is None:
            booking = {name: data[name] for name in BOOKING_FIELDS if name in data}
            return schedule_call(now=now, by=by, rrule=data.get("rrule", ""), **booking)
        changes = {name: data[name] for name in self.changed_data if name in EDITABLE_FIELDS}
        if self.timing_changed() and data.get("rrule") != self.instance.rrule:
            changes["rrule"] = data["rrule"]
        return edit_scheduled_call(self.instance, changes=changes, now=now, by=by)
