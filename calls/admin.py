"""Admin for calls, and the back office's pages that need the calls app: the dashboard, a
campaign's results, its survey preview and its results CSV.

Those campaign pages are added here, on a subclass of the campaign admin, because `calls` may
import `campaigns` but never the reverse (STYLE.md)."""

from xml.dom import minidom
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from calls.booking.editing import EDITABLE_FIELDS, edit_scheduled_call, upcoming_occurrences
from calls.booking.scheduling import (
    IllegalScheduledCallTransition,
    cancel_scheduled_call,
    pause_scheduled_call,
    resume_scheduled_call,
    schedule_call,
)
from calls.models import Answer, CallAttempt, CallEvent, DiallerHeartbeat, ScheduledCall
from calls.reports import charts
from calls.reports.dashboard import (
    CONTROL_ACTIONS,
    OUTCOME_LABELS,
    OUTCOMES,
    STATE_COLOURS,
    TOP_ANSWERS,
    Dashboard,
    build_dashboard,
    question_results,
    tick_details,
)
from calls.reports.live import LIVE_LIST_LENGTH, duration_text, tick_summary
from calls.reports.results import iter_results_csv
from calls.reports.stats import DEFINITIONS, campaign_stats, outcome_expression
from calls.webhooks.survey import preview_survey
from campaigns.admin import CampaignAdmin
from campaigns.models import Campaign
from contacts.models import Contact
from contacts.phones import InvalidPhone, normalise_phone
from voicesurvey.admin_confirm import confirmed_or_ask


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

    @admin.display(description="Contact")
    def contact_ref(self, obj):
        return f"Contact #{obj.contact_id}"

    def may_see_contacts(self, request) -> bool:
        return request.user.has_perm("contacts.view_contact")

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

    def get_readonly_fields(self, request, obj=None):
        return self._hide_contact(request, super().get_readonly_fields(request, obj))


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


class OutcomeFilter(admin.SimpleListFilter):
    """Filter by the outcome the retry rules see (computed in SQL, as on the dashboard)."""

    title = "outcome"
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        return [("in_progress", "Live (not finished)")] + [(k, label) for k, label, _ in OUTCOMES]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.alias(outcome_sql=outcome_expression()).filter(outcome_sql=self.value())
        return queryset


@admin.register(CallAttempt)
class CallAttemptAdmin(ContactDetailsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "campaign",
        "contact",
        "attempt_number",
        "status",
        "answered_by",
        "outcome_label",
        "duration",
        "error_code",
    ]
    list_filter = [
        "status",
        OutcomeFilter,
        "answered_by",
        "campaign",
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["contact__phone", "contact__name", "call_id", "provider_call_sid"]
    list_select_related = ["campaign", "contact"]
    date_hierarchy = "created_at"
    inlines = [AnswerInline, CallEventInline]
    show_full_result_count = False

    @admin.display(description="Outcome")
    def outcome_label(self, obj):
        if obj.is_live:
            return "live"
        return OUTCOME_LABELS.get(obj.outcome, obj.outcome)


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


class ScheduledCallForm(forms.ModelForm):
    """Books through `schedule_call` and edits through `edit_scheduled_call`, so the admin
    checks exactly what the API checks. The form's `clean` tries the change in a savepoint
    that is rolled back: the domain's refusals show on the form; `save_model` then does it."""

    class Meta:
        model = ScheduledCall
        fields = [
            "contact",
            "run_at",
            "timezone",
            "rrule",
            "note",
            "max_retries",
            "retry_delay_minutes",
            "misfire_grace_seconds",
        ]
        help_texts = {
            "run_at": "Wall-clock time in the zone below (the first occurrence).",
            "timezone": "IANA zone, e.g. Europe/Paris; recurrences keep its local time.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # Show run_at as it was booked: wall-clock time in the call's own zone.
            zone = ZoneInfo(self.instance.timezone)
            self.initial["run_at"] = self.instance.run_at.astimezone(zone).replace(tzinfo=None)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if "run_at" in data:
            data["run_at"] = timezone.make_naive(data["run_at"])  # typed as wall-clock time
        try:
            with transaction.atomic():
                self.save_through_domain(by=None)
                transaction.set_rollback(True)
        except ValidationError as exc:
            for field, problems in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, problems)
        except IllegalScheduledCallTransition as exc:
            self.add_error(None, str(exc))
        return data

    def save_through_domain(self, *, by) -> ScheduledCall:
        data, now = self.cleaned_data, timezone.now()
        if self.instance.pk is None:
            booking = {name: data[name] for name in self.Meta.fields if name in data}
            return schedule_call(now=now, by=by, **booking)
        changes = {name: data[name] for name in self.changed_data if name in EDITABLE_FIELDS}
        return edit_scheduled_call(self.instance, changes=changes, now=now, by=by)


@admin.register(ScheduledCall)
class ScheduledCallAdmin(ContactDetailsMixin, admin.ModelAdmin):
    form = ScheduledCallForm
    list_display = [
        "contact",
        "next_run_utc",
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
    list_select_related = ["contact"]
    raw_id_fields = ["contact"]
    readonly_fields = [
        "status",
        "next_run_at",
        "upcoming",
        "retries_done",
        "skipped_occurrences",
        "created_by",
        "created_at",
    ]
    inlines = [CallEventInline]
    actions = ["pause_series", "resume_series", "cancel_series"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        fixed = ["contact"] if obj is not None else []
        return fixed + list(super().get_readonly_fields(request, obj))

    def has_delete_permission(self, request, obj=None):
        return False  # history is kept: the cancel action ends a call

    @admin.display(description="Next run (UTC)", ordering="next_run_at")
    def next_run_utc(self, obj):
        return f"{obj.next_run_at:%Y-%m-%d %H:%M}" if obj.next_run_at else "-"

    @admin.display(description="Next run (its zone)")
    def next_run_local(self, obj):
        if obj.next_run_at is None:
            return "-"
        return f"{obj.next_run_at.astimezone(ZoneInfo(obj.timezone)):%Y-%m-%d %H:%M} {obj.timezone}"

    @admin.display(description="Retries")
    def retries(self, obj):
        return f"{obj.retries_done} / {obj.max_retries}"

    @admin.display(description="Next occurrences (UTC)")
    def upcoming(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        times = upcoming_occurrences(obj, now=timezone.now(), count=5)
        return ", ".join(f"{at:%Y-%m-%d %H:%M}" for at in times) or "None: the call is over."

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
            self.message_user(request, f"{done} scheduled call(s) {done_text}.", messages.SUCCESS)

    @admin.action(description="Pause the selected series", permissions=["change"])
    def pause_series(self, request, queryset):
        self._change_series(request, queryset, pause_scheduled_call, "paused")

    @admin.action(description="Resume the selected series", permissions=["change"])
    def resume_series(self, request, queryset):
        self._change_series(request, queryset, resume_scheduled_call, "resumed")

    @admin.action(description="Cancel the selected series", permissions=["change"])
    def cancel_series(self, request, queryset):
        asking = confirmed_or_ask(
            self,
            request,
            queryset,
            action="cancel_series",
            question="Cancel these scheduled calls, every future occurrence?",
            consequence="A cancelled series cannot be resumed: book the call again instead.",
        )
        if asking is not None:
            return asking
        self._change_series(request, queryset, cancel_scheduled_call, "cancelled")


@admin.register(DiallerHeartbeat)
class DiallerHeartbeatAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["last_tick_at", "worker", "summary"]
    fields = ["last_tick_at", "worker", "summary", "details"]
    readonly_fields = fields

    @admin.display(description="What the tick did")
    def summary(self, obj):
        return tick_summary(obj.report)

    @admin.display(description="Report")
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
        title=f"{name}: contacts by state",
        empty_text="No contacts yet",
    )
    hourly = charts.column_chart(
        [(f"{hour:%H}:00", n) for hour, n in panel.hourly],
        title=f"{name}: calls per hour, last 24 hours (UTC)",
        empty_text="No calls in the last 24 hours",
        max_labels=8,
        current_label="now",
    )
    outcomes = charts.stacked_bar(
        [(label, panel.outcomes.get(key, 0), colour) for key, label, colour in OUTCOMES],
        title=f"{name}: outcomes of the last 24 hours",
        empty_text="No finished calls in the last 24 hours",
    )
    return {"states": states, "hourly": hourly, "outcomes": outcomes}


class CampaignBackOfficeAdmin(CampaignAdmin):
    """The campaign admin plus the pages that read calls: the dashboard, a campaign's results,
    its results CSV and its survey preview.

    Each page needs the model permissions the API asks for the same data (PAGE_PERMISSIONS):
    the campaign's figures `view_campaign` (the API's stats), the answers `view_answer`, the
    contacts' names and numbers `view_contact` (the preview speaks a contact's details; the CSV
    has both, as /api/v1/campaigns/{id}/results.csv)."""

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
            "title": "Dashboard",
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
                    title=f"Question {item.question.position}: answers",
                ),
            )
            for item in question_results(campaign)
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Results: {campaign.name}",
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
        response = StreamingHttpResponse(
            iter_results_csv(campaign), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = (
            f'attachment; filename="campaign-{campaign.pk}-results.csv"'
        )
        return response

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
                    f"No contact {wanted!r} in this campaign: showing the fallbacks.",
                    messages.WARNING,
                )
        else:
            contact = campaign.contacts.order_by("pk").first()
        twiml = preview_survey(campaign, contact)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Survey preview: {campaign.name}",
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
        "at_text": f"{board.now:%H:%M:%S} UTC",
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
