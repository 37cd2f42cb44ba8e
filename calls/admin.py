"""Admin for calls, and the back office's pages that need the calls app: the dashboard, a
campaign's results, its survey preview and its results CSV.

Those campaign pages are added here, on a subclass of the campaign admin, because `calls` may
import `campaigns` but never the reverse (STYLE.md)."""

from xml.dom import minidom
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, ExpressionWrapper, Q, Value
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from calls.booking.editing import upcoming_occurrences
from calls.booking.forms import ScheduledCallForm
from calls.booking.scheduling import (
    IllegalScheduledCallTransition,
    pause_scheduled_call,
    resume_scheduled_call,
)
from calls.dialler.cancel import cancel_booking, cancel_campaign
from calls.dialler.limits import current_limits, save_provider_account
from calls.models import (
    Answer,
    CallAttempt,
    CallEvent,
    DiallerHeartbeat,
    ProviderAccount,
    ScheduledCall,
)
from calls.reports import charts
from calls.reports.attempts_csv import iter_attempts_csv
from calls.reports.dashboard import (
    CONTROL_ACTIONS,
    OUTCOMES,
    STATE_COLOURS,
    TOP_ANSWERS,
    Dashboard,
    build_dashboard,
    question_results,
    tick_details,
)
from calls.reports.history import attempt_timeline, outcome_text
from calls.reports.live import LIVE_LIST_LENGTH, tick_summary
from calls.reports.results import iter_results_csv
from calls.reports.stats import DEFINITIONS, campaign_stats, outcome_expression
from calls.webhooks.survey import preview_survey
from campaigns.admin import ACTION_TITLES, CONFIRM, CampaignAdmin, done_text
from campaigns.models import Campaign, IllegalTransition
from contacts.admin import (
    PHONE_SEARCH_HELP,
    CsvExportMixin,
    PhoneSearchMixin,
    both_clocks,
    csv_response,
)
from contacts.models import Contact
from contacts.phones import InvalidPhone, normalise_phone
from voicesurvey.admin_autocomplete import CheckedAutocompleteMixin
from voicesurvey.admin_confirm import confirmed_or_ask
from voicesurvey.times import callee_time, duration_text, operator_time


class ReadOnlyAdminMixin:
    """Attempts, events and answers are written by the dialler and the provider only."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ContactDetailsMixin:
    """A contact's name and number need `contacts.view_contact`, as in the API, where attempts,
    answers and scheduled calls name their contact by id only. Without it the contact column
    and field show the id, and searching by the contact's name or number is off."""

    @admin.display(description=_("Contact"))
    def contact_ref(self, obj):
        return f"Contact #{obj.contact_id}"

    phone_search_field = "contact__phone"

    def may_see_contacts(self, request) -> bool:
        return request.user.has_perm("contacts.view_contact")

    def may_search_phones(self, request) -> bool:
        return self.may_see_contacts(request)

    def _hide_contact(self, request, names):
        if self.may_see_contacts(request):
            return names
        return [("contact_ref" if name == "contact" else name) for name in names]

    def get_list_display(self, request):
        return self._hide_contact(request, super().get_list_display(request))

    def get_search_fields(self, request):
        fields = super().get_search_fields(request)
        if self.may_see_contacts(request):
            return fields
        return [name for name in fields if "contact__" not in name]

    def get_fields(self, request, obj=None):
        return self._hide_contact(request, super().get_fields(request, obj))

    def hide_contact_in(self, request, fieldsets):
        if self.may_see_contacts(request):
            return fieldsets
        return [
            (
                name,
                {
                    **options,
                    "fields": [
                        tuple(self._hide_contact(request, line))
                        if isinstance(line, (list, tuple))
                        else self._hide_contact(request, [line])[0]
                        for line in options["fields"]
                    ],
                },
            )
            for name, options in fieldsets
        ]

    def get_fieldsets(self, request, obj=None):
        return self.hide_contact_in(request, super().get_fieldsets(request, obj))

    def get_readonly_fields(self, request, obj=None):
        return self._hide_contact(request, super().get_readonly_fields(request, obj))


class CallEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = CallEvent
    fields = ["at", "kind", "message", "actor", "payload"]
    readonly_fields = fields
    extra = 0


class BookedAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    """A scheduled call's attempts: the provider's call id, the outcome and the error. Shown
    to those who may view attempts (`calls.view_callattempt`), as in the API."""

    model = CallAttempt
    fk_name = "scheduled_call"
    fields = [
        "created_at",
        "attempt_link",
        "provider_call_sid",
        "status",
        "outcome_label",
        "error_code",
        "error_message",
        "ended_at",
    ]
    readonly_fields = fields
    ordering = ["created_at", "attempt_number"]
    extra = 0
    verbose_name_plural = _("Attempts")

    @admin.display(description=_("Attempt"))
    def attempt_link(self, obj):
        url = reverse("admin:calls_callattempt_change", args=[obj.pk])
        return format_html('<a href="{}">#{}</a>', url, obj.attempt_number)

    @admin.display(description=_("Outcome"))
    def outcome_label(self, obj):
        return outcome_text(obj)


class OutcomeFilter(admin.SimpleListFilter):
    """Filter by the outcome the retry rules see (computed in SQL, as on the dashboard)."""

    title = _("outcome")
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        finished = [(key, label) for key, label, _colour in OUTCOMES]
        return [("in_progress", _("Live (not finished)")), *finished]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.alias(outcome_sql=outcome_expression()).filter(outcome_sql=self.value())
        return queryset


@admin.register(CallAttempt)
class CallAttemptAdmin(
    ContactDetailsMixin, PhoneSearchMixin, CsvExportMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    """The list answers "how did the calls go" at a glance (when, who, outcome, duration, who
    picked up) without scrolling at 1366 px; the page shows the call as a timeline."""

    list_display = [
        "created",
        "outcome_label",
        "duration_label",
        "answered_by_label",
        "contact",
        "campaign",
    ]
    list_filter = [
        "status",
        OutcomeFilter,
        "answered_by",
        "campaign",
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["contact__phone", "contact__name", "call_id", "provider_call_sid"]
    search_help_text = PHONE_SEARCH_HELP
    list_select_related = ["campaign", "contact"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["contact", "campaign", "attempt_number", "scheduled_call"]}),
        (
            _("Outcome"),
            {
                "fields": [
                    ("outcome_label", "status", "answered_by"),
                    ("duration_label", "survey_finished", "opted_out"),
                    "callback_requested_for",
                    ("error_code", "error_message"),
                ]
            },
        ),
        (
            _("Times"),
            {"fields": ["created_seconds", "dialled_seconds", "answered_seconds", "ended_seconds"]},
        ),
        (
            _("Provider"),
            {
                "fields": [
                    ("provider", "provider_call_sid"),
                    "call_id",
                    ("caller_id", "machine_detection"),
                ]
            },
        ),
    ]
    readonly_fields = [
        "outcome_label",
        "duration_label",
        "created_seconds",
        "dialled_seconds",
        "answered_seconds",
        "ended_seconds",
    ]
    export_permissions = ("calls.view_callattempt",)

    @admin.display(description=_("Called at"), ordering="created_at")
    def created(self, obj):
        return both_clocks(obj.created_at, obj.contact.zones, seconds=True)

    @admin.display(description=_("Outcome"))
    def outcome_label(self, obj):
        return outcome_text(obj)

    @admin.display(description=_("Duration"), ordering="duration")
    def duration_label(self, obj):
        return duration_text(obj.duration)

    @admin.display(description=_("Answered by"), ordering="answered_by")
    def answered_by_label(self, obj):
        if obj.answered_at is None and obj.answered_by == CallAttempt.AnsweredBy.UNKNOWN:
            return "–"
        return obj.get_answered_by_display()

    def _moment(self, obj, at):
        if at is None:
            return "–"
        callee = callee_time(at, obj.contact.zones, seconds=True, named=True)
        return f"{operator_time(at, seconds=True)}  ·  {_('callee')} {callee}"

    @admin.display(description=_("Created"))
    def created_seconds(self, obj):
        return self._moment(obj, obj.created_at)

    @admin.display(description=_("Dialled"))
    def dialled_seconds(self, obj):
        return self._moment(obj, obj.dialled_at)

    @admin.display(description=_("Answered"))
    def answered_seconds(self, obj):
        return self._moment(obj, obj.answered_at)

    @admin.display(description=_("Ended"))
    def ended_seconds(self, obj):
        return self._moment(obj, obj.ended_at)

    def export_rows(self, request, queryset):
        return iter_attempts_csv(queryset, with_contacts=self.may_see_contacts(request))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        attempt = self.get_object(request, object_id)  # None for an id that is no attempt's
        extra = {}
        if attempt is not None and self.has_view_permission(request, attempt):
            extra["timeline"] = attempt_timeline(attempt, user=request.user)
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})


@admin.register(CallEvent)
class CallEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "kind", "attempt", "scheduled_call", "actor", "message"]
    list_filter = ["kind"]
    search_fields = ["attempt__call_id", "message"]
    list_select_related = ["attempt", "scheduled_call"]
    show_full_result_count = False


@admin.register(Answer)
class AnswerAdmin(ContactDetailsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["answered_at", "question", "value", "confidence", "attempt"]
    list_filter = ["question__campaign"]
    search_fields = ["value", "attempt__contact__phone"]
    list_select_related = ["question", "attempt"]


@admin.register(ScheduledCall)
class ScheduledCallAdmin(
    CheckedAutocompleteMixin, ContactDetailsMixin, PhoneSearchMixin, admin.ModelAdmin
):
    form = ScheduledCallForm
    list_display = [
        "contact",
        "next_run_operator",
        "next_run_local",
        "rrule",
        "status",
        "retries",
    ]
    list_filter = [
        "status",
        ("next_run_at", admin.DateFieldListFilter),
        ("created_at", admin.DateFieldListFilter),
        "contact__campaign",
    ]
    search_fields = ["contact__phone", "contact__name", "note"]
    search_help_text = PHONE_SEARCH_HELP
    list_select_related = ["contact"]
    autocomplete_fields = ["contact"]  # found by name or number, as on the contact list
    readonly_fields = [
        "rule",
        "status",
        "next_run_at",
        "upcoming",
        "retries_done",
        "skipped_occurrences",
        "created_by",
        "created_at",
    ]
    inlines = [BookedAttemptInline, CallEventInline]
    actions = ["pause_series", "resume_series", "cancel_series"]
    show_full_result_count = False

    def get_fieldsets(self, request, obj=None):
        record = ["status", "next_run_at", "upcoming", "retries_done", "skipped_occurrences"]
        fieldsets = [
            (None, {"fields": ["contact", "timezone", "run_at"]}),
            (
                _("Repeat"),
                {"fields": ["repeat", "interval", "days", "ends", "until", "count", "rule"]},
            ),
            (
                _("If the call is not answered"),
                {"fields": [("max_retries", "retry_delay_minutes"), "misfire_grace_seconds"]},
            ),
            (None, {"fields": ["note"]}),
            *([(_("Record"), {"fields": record + ["created_by", "created_at"]})] if obj else []),
        ]
        return self.hide_contact_in(request, fieldsets)

    def get_readonly_fields(self, request, obj=None):
        fixed = ["contact"] if obj is not None else []
        return fixed + list(super().get_readonly_fields(request, obj))

    def has_delete_permission(self, request, obj=None):
        return False  # history is kept: the cancel action ends a call

    @admin.display(description=_("Next run (your zone)"), ordering="next_run_at")
    def next_run_operator(self, obj):
        return operator_time(obj.next_run_at)

    @admin.display(description=_("Next run (the call's zone)"))
    def next_run_local(self, obj):
        if obj.next_run_at is None:
            return "-"
        return f"{obj.next_run_at.astimezone(ZoneInfo(obj.timezone)):%Y-%m-%d %H:%M} {obj.timezone}"

    @admin.display(description=_("Rule (RFC 5545)"))
    def rule(self, obj):
        """The rule the repetition choices make, read-only; recurrence.js keeps it in step."""
        text = obj.rrule if obj is not None and obj.pk else ""
        none = _("None: the call does not repeat")
        return format_html(
            '<code id="rrule-preview" data-stored="{}" data-none="{}">{}</code>',
            text,
            none,
            text or none,
        )

    @admin.display(description=_("Retries"))
    def retries(self, obj):
        return f"{obj.retries_done} / {obj.max_retries}"

    @admin.display(description=_("Next calls"))
    def upcoming(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        times = upcoming_occurrences(obj, now=timezone.now(), count=5)
        if not times:
            return _("None: the call is over.")
        zone = ZoneInfo(obj.timezone)
        return format_html_join(
            mark_safe("<br>"),
            "{} ({} {})",
            (
                (operator_time(at), f"{at.astimezone(zone):%Y-%m-%d %H:%M}", obj.timezone)
                for at in times
            ),
        )

    def save_model(self, request, obj, form, change):
        saved = form.save_through_domain(by=request.user)
        for field in ScheduledCall._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False

    def _change_series(self, request, queryset, domain_function, done_text):
        now, done = timezone.now(), 0
        for call in queryset.select_related("contact"):
            try:
                domain_function(call, scope="series", now=now, by=request.user)
            except IllegalScheduledCallTransition as exc:
                self.message_user(request, f"{call}: {exc}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(
                request,
                _("%(count)d scheduled call(s) %(done)s.") % {"count": done, "done": done_text},
                messages.SUCCESS,
            )

    @admin.action(description=_("Pause the selected series"), permissions=["change"])
    def pause_series(self, request, queryset):
        self._change_series(request, queryset, pause_scheduled_call, _("paused"))

    @admin.action(description=_("Resume the selected series"), permissions=["change"])
    def resume_series(self, request, queryset):
        self._change_series(request, queryset, resume_scheduled_call, _("resumed"))

    @admin.action(description=_("Cancel the selected series"), permissions=["change"])
    def cancel_series(self, request, queryset):
        asking = confirmed_or_ask(
            self,
            request,
            queryset,
            action="cancel_series",
            question=_("Cancel these scheduled calls, every future occurrence?"),
            consequence=_(
                "A cancelled series cannot be resumed: book the call again instead. "
                "A call in progress is hung up."
            ),
        )
        if asking is not None:
            return asking
        self._change_series(request, queryset, cancel_booking, _("cancelled"))


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    """The dialling limits per provider account: the next tick uses a change."""

    list_display = [
        "provider",
        "account_label",
        "max_concurrent_calls",
        "calls_per_second",
        "in_force",
        "updated_by",
        "updated_at",
    ]
    fields = [
        "provider",
        "account",
        "max_concurrent_calls",
        "calls_per_second",
        "limits_now",
        "updated_by",
        "updated_at",
    ]
    readonly_fields = ["limits_now", "updated_by", "updated_at"]
    list_select_related = ["updated_by"]

    def get_queryset(self, request):
        # Which row is in force, looked up once for the page rather than once per row.
        row = current_limits(settings.TELEPHONY_PROVIDER).row
        in_force = Q(pk=row.pk) if row is not None else Value(False)
        in_force = ExpressionWrapper(in_force, output_field=BooleanField())
        return super().get_queryset(request).annotate(in_force_now=in_force)

    @admin.display(description=_("Account"))
    def account_label(self, obj):
        return obj.account or _("(the configured account)")

    @admin.display(description=_("In force now"), boolean=True)
    def in_force(self, obj):
        return obj.in_force_now

    @admin.display(description=_("Limits in force now"))
    def limits_now(self, obj=None):
        limits = current_limits(settings.TELEPHONY_PROVIDER)
        source = _("from %(row)s") % {"row": limits.row} if limits.row else _("from the settings")
        return _(
            "%(provider)s: at most %(cap)s live calls, %(pace)s calls per second (%(source)s)."
        ) % {
            "provider": settings.TELEPHONY_PROVIDER,
            "cap": limits.max_concurrent_calls,
            "pace": f"{limits.calls_per_second:g}",
            "source": source,
        }

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in form.changed_data}
        saved = save_provider_account(account=obj, fields=fields, by=request.user)
        obj.pk = saved.pk


@admin.register(DiallerHeartbeat)
class DiallerHeartbeatAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["last_tick_at", "worker", "summary"]
    fields = ["last_tick_at", "worker", "summary", "details"]
    readonly_fields = fields

    @admin.display(description=_("What the tick did"))
    def summary(self, obj):
        return tick_summary(obj.report)

    @admin.display(description=_("Report"))
    def details(self, obj):
        return "; ".join(f"{label}: {text}" for label, text in tick_details(obj.report))


def panel_charts(panel) -> dict:
    """The SVG charts of one campaign's dashboard panel."""
    name = panel.campaign.name
    states = charts.stacked_bar(
        [
            (label, panel.states.get(value, 0), STATE_COLOURS[value])
            for value, label in Contact.State.choices
        ],
        title=_("%s: contacts by state") % name,
        empty_text=_("No contacts yet"),
    )
    hourly = charts.column_chart(
        [(f"{hour:%H}:00", n) for hour, n in panel.hourly],
        title=_("%s: calls per hour, last 24 hours (UTC)") % name,
        empty_text=_("No calls in the last 24 hours"),
        max_labels=8,
        current_label=_("now"),
    )
    outcomes = charts.stacked_bar(
        [(label, panel.outcomes.get(key, 0), colour) for key, label, colour in OUTCOMES],
        title=_("%s: outcomes of the last 24 hours") % name,
        empty_text=_("No finished calls in the last 24 hours"),
    )
    return {"states": states, "hourly": hourly, "outcomes": outcomes}


@admin.action(description=_("Cancel selected campaigns"), permissions=["change"])
def cancel_campaigns(modeladmin, request, queryset):
    """The campaign admin's cancel, which also cancels the campaigns' booked calls and hangs up
    their live calls (calls.dialler.cancel)."""
    question, consequence = CONFIRM["cancel"]
    asking = confirmed_or_ask(
        modeladmin,
        request,
        queryset,
        action="cancel_campaigns",
        question=question,
        consequence=_("%s Their booked calls are cancelled and live calls hung up.") % consequence,
    )
    if asking is not None:
        return asking
    for campaign in queryset:
        try:
            hang_ups = cancel_campaign(campaign, now=timezone.now(), by=request.user)
        except IllegalTransition as exc:
            modeladmin.message_user(request, str(exc), messages.ERROR)
        else:
            level = messages.WARNING if hang_ups.failed else messages.SUCCESS
            text = _("%(action)s: %(campaign)s; %(hang_ups)s.") % {
                "action": ACTION_TITLES["cancel"],
                "campaign": done_text(campaign),
                "hang_ups": hang_ups,
            }
            modeladmin.message_user(request, text, level)


class CampaignBackOfficeAdmin(CampaignAdmin):
    """The campaign admin plus the pages that read calls: the dashboard, a campaign's results,
    its results CSV and its survey preview.

    Each page needs the model permissions the API asks for the same data (PAGE_PERMISSIONS):
    the campaign's figures `view_campaign` (the API's stats), the answers `view_answer`, the
    contacts' names and numbers `view_contact` (the preview speaks a contact's details; the CSV
    has both, as /api/v1/campaigns/{id}/results.csv)."""

    actions = [
        cancel_campaigns if action.__name__ == "cancel_campaigns" else action
        for action in CampaignAdmin.actions
    ]
    PAGE_PERMISSIONS = {
        "dashboard": ["campaigns.view_campaign"],  # and its live figures (JSON)
        "results": ["campaigns.view_campaign", "calls.view_answer"],
        "results_csv": ["campaigns.view_campaign", "contacts.view_contact", "calls.view_answer"],
        "preview": ["campaigns.view_campaign", "contacts.view_contact"],
    }

    def may_open(self, request, page: str) -> bool:
        return request.user.has_perms(self.PAGE_PERMISSIONS[page])

    def check_page(self, request, page: str) -> None:
        if not self.may_open(request, page):
            raise PermissionDenied

    def change_view(self, request, object_id, form_url="", extra_context=None):
        may_open = {page: self.may_open(request, page) for page in self.PAGE_PERMISSIONS}
        may_open["import_contacts"] = request.user.has_perm("contacts.add_contact")
        extra_context = {
            **(extra_context or {}),
            "may_open": may_open,
            "may_control": self.has_change_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view  # staff only; anyone else goes to the login page
        return [
            path("dashboard/", view(self.dashboard_view), name="dashboard"),
            path("dashboard/live/", view(self.dashboard_live_view), name="dashboard_live"),
            path(
                "<int:object_id>/control/<str:action>/",
                view(self.control_view),
                name="campaigns_campaign_control",
            ),
            path(
                "<int:object_id>/results/",
                view(self.results_view),
                name="campaigns_campaign_results",
            ),
            path(
                "<int:object_id>/results.csv",
                view(self.results_csv_view),
                name="campaigns_campaign_results_csv",
            ),
            path(
                "<int:object_id>/preview/",
                view(self.preview_view),
                name="campaigns_campaign_preview",
            ),
        ] + super().get_urls()

    def viewable_campaign(self, request, object_id, page: str) -> Campaign:
        self.check_page(request, page)
        campaign = get_object_or_404(Campaign, pk=object_id)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        return campaign

    def dashboard_view(self, request):
        self.check_page(request, "dashboard")
        board = build_dashboard(now=timezone.now())
        context = {
            **self.admin_site.each_context(request),
            "title": _("Dashboard"),
            "board": board,
            "panels": [(panel, panel_charts(panel)) for panel in board.panels],
            "live_calls": live_call_rows(board, may_see_contacts=self.may_see_contacts(request)),
            "tick_rows": tick_details(board.heartbeat.report) if board.heartbeat else [],
            "may_control": self.has_change_permission(request),
            "definitions": DEFINITIONS,
            "refresh_seconds": LIVE_REFRESH_SECONDS,
            "live_list_length": LIVE_LIST_LENGTH,
            "global_cap": settings.DIALLER_GLOBAL_MAX_CONCURRENT_CALLS,
        }
        return TemplateResponse(request, "admin/voicesurvey/dashboard.html", context)

    def dashboard_live_view(self, request):
        """The dashboard's figures as JSON, for the page's script to refresh them in place."""
        self.check_page(request, "dashboard")
        board = build_dashboard(now=timezone.now(), with_day=False)
        data = wallboard_json(board, may_see_contacts=self.may_see_contacts(request))
        response = JsonResponse(data)
        response["Cache-Control"] = "no-store"
        return response

    def may_see_contacts(self, request) -> bool:
        return request.user.has_perm("contacts.view_contact")

    @method_decorator(require_POST)
    def control_view(self, request, object_id, action):
        """Start, pause, resume or cancel one campaign from a button on its dashboard panel
        or its page: the list action of that name, run on this one campaign, so the
        permission, the confirmation (cancel) and the messages are the list's own."""
        if action not in CONTROL_ACTIONS:
            raise Http404
        campaign = get_object_or_404(Campaign, pk=object_id)
        found = self.get_actions(request).get(f"{action}_campaigns")
        if found is None or not self.has_change_permission(request, campaign):
            raise PermissionDenied
        run_action = found[0]
        asking = run_action(self, request, Campaign.objects.filter(pk=campaign.pk))
        if asking is not None:
            return asking  # the "Are you sure?" page; it posts back here
        back = request.GET.get("next", "")
        if not url_has_allowed_host_and_scheme(
            back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            back = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
        return HttpResponseRedirect(back)

    def results_view(self, request, object_id):
        campaign = self.viewable_campaign(request, object_id, "results")
        stats = campaign_stats(campaign.pk)
        results = [
            (
                item,
                charts.bar_list_chart(
                    item.labelled,
                    total=item.total,
                    title=_("Question %d: answers") % item.question.position,
                ),
            )
            for item in question_results(campaign)
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Results: %s") % campaign.name,
            "opts": self.opts,
            "original": campaign,
            "campaign": campaign,
            "results": results,
            "top_answers": TOP_ANSWERS,
            "stats": stats,
            "done": stats["contacts"]["completed"] + stats["contacts"]["failed"],
            "callable": stats["contacts"]["total"] - stats["contacts"]["excluded"],
            "definitions": DEFINITIONS,
        }
        return TemplateResponse(request, "admin/voicesurvey/campaign_results.html", context)

    def results_csv_view(self, request, object_id):
        """The results as CSV, streamed row by row (`calls.reports.results`): no size limit."""
        campaign = self.viewable_campaign(request, object_id, "results_csv")
        return csv_response(iter_results_csv(campaign), f"campaign-{campaign.pk}-results.csv")

    def preview_view(self, request, object_id):
        """The survey as a contact would hear it: the first contact of the campaign, or the
        one asked for by id or phone; with no contact, every placeholder's fallback."""
        campaign = self.viewable_campaign(request, object_id, "preview")
        wanted = request.GET.get("contact", "").strip()
        contact = None
        if wanted:
            contact = find_contact(campaign, wanted)
            if contact is None:
                self.message_user(
                    request,
                    _("No contact %(wanted)r in this campaign: showing the fallbacks.")
                    % {"wanted": wanted},
                    messages.WARNING,
                )
        else:
            contact = campaign.contacts.order_by("pk").first()
        twiml = preview_survey(campaign, contact)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Survey preview: %s") % campaign.name,
            "opts": self.opts,
            "original": campaign,
            "campaign": campaign,
            "contact": contact,
            "wanted": wanted,
            "spoken": spoken_lines(twiml),
            "twiml": pretty_xml(twiml),
        }
        return TemplateResponse(request, "admin/voicesurvey/campaign_preview.html", context)


LIVE_REFRESH_SECONDS = 5  # how often the dashboard's script asks for the live figures


def live_call_rows(board: Dashboard, *, may_see_contacts: bool) -> list[dict[str, str]]:
    """The live calls as the page lists them: a contact's name needs `view_contact`, as in
    the API; without it the contact's id."""
    names = {panel.campaign.pk: panel.campaign.name for panel in board.panels}
    return [
        {
            "call_id": call.call_id,
            "campaign": names.get(call.campaign_id, f"#{call.campaign_id}"),
            "contact": (call.contact_name if may_see_contacts and call.contact_name else "")
            or f"Contact #{call.contact_id}",
            "status": "answered" if call.answered else call.status.replace("_", " "),
            "duration": duration_text(call.seconds),
        }
        for call in board.live
    ]


def wallboard_json(board: Dashboard, *, may_see_contacts: bool) -> dict:
    """What the dashboard's script refreshes: every figure as the page words it (the page and
    the script never format a number differently), the dialler's health and the live calls."""
    health = board.health
    return {
        "at": board.now.isoformat(),
        # In the operator's zone, as the page shows it (the middleware activates it).
        "at_text": date_format(timezone.localtime(board.now), "H:i:s T"),
        "health": {"ok": health.ok, "text": health.text},
        "live_calls_total": board.live_calls,
        "campaigns": [
            {
                "id": panel.campaign.pk,
                "status": panel.campaign.status,
                "actions": panel.allowed_actions,
                "progress_percent": round(100 * (panel.progress or 0), 1),
                "figures": panel.figures,
            }
            for panel in board.panels
        ],
        "live_calls": live_call_rows(board, may_see_contacts=may_see_contacts),
    }


def find_contact(campaign: Campaign, wanted: str) -> Contact | None:
    """A contact of `campaign` by its id or its phone number (as typed, normalised)."""
    contacts = campaign.contacts.all()
    if wanted.isdigit() and (found := contacts.filter(pk=int(wanted)).first()):
        return found
    try:
        phone = normalise_phone(wanted)
    except InvalidPhone:
        return None
    return contacts.filter(phone=phone).first()


def spoken_lines(twiml: str) -> list[str]:
    """What the caller hears, in order: the text of every <Say>."""
    root = ElementTree.fromstring(twiml)
    return [" ".join("".join(say.itertext()).split()) for say in root.iter("Say")]


def pretty_xml(twiml: str) -> str:
    return minidom.parseString(twiml).toprettyxml(indent="  ")


admin.site.unregister(Campaign)
admin.site.register(Campaign, CampaignBackOfficeAdmin)

from calls import contact_admin  # noqa: E402, F401  (the contact page's history and call buttons)
