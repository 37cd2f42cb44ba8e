from django.contrib import admin, messages
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from campaigns.forms import CampaignForm, QuestionFieldsForm, QuestionForm
from campaigns.models import Campaign, IllegalTransition, Question, status_word
from voicesurvey.admin_confirm import confirmed_or_ask


class QuestionInlineFormSet(BaseInlineFormSet):
    def clean(self):
        """No question may take the campaign's opt-out or call-back key as an answer (the
        campaign here carries the keys as posted)."""
        super().clean()
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or self._should_delete_form(form):
                continue
            for field, message in form.instance.reserved_key_clashes(self.instance).items():
                form.add_error(field, message)


class QuestionInline(admin.StackedInline):
    model = Question
    form = QuestionFieldsForm
    formset = QuestionInlineFormSet
    extra = 0
    fields = [
        ("position", "kind"),
        "prompt",
        ("min_value", "max_value"),
        ("valid_answers", "max_digits"),
        ("reprompt_message", "max_reprompts"),
    ]


# The title of each action's report ("Pause: Spring poll (now paused).").
ACTION_TITLES = {
    "schedule": pgettext_lazy("campaign action title", "Schedule"),
    "start": pgettext_lazy("campaign action title", "Start"),
    "pause": pgettext_lazy("campaign action title", "Pause"),
    "resume": pgettext_lazy("campaign action title", "Resume"),
    "complete": pgettext_lazy("campaign action title", "Complete"),
    "cancel": pgettext_lazy("campaign action title", "Cancel"),
}


def done_text(campaign: Campaign) -> str:
    """One campaign in an action's report: "Spring poll (now paused)"."""
    return _("%(name)s (now %(status)s)") % {
        "name": campaign.name,
        "status": status_word(campaign.status),
    }


def run_transition(modeladmin, request, queryset, action: str) -> None:
    """Apply one status-machine action to each selected campaign and report each outcome."""
    done = []
    for campaign in queryset:
        try:
            campaign.transition(action)
        except IllegalTransition as exc:
            modeladmin.message_user(request, str(exc), messages.ERROR)
        else:
            done.append(done_text(campaign))
    if done:
        report = _("%(action)s: %(campaigns)s.") % {
            "action": ACTION_TITLES[action],
            "campaigns": ", ".join(done),
        }
        modeladmin.message_user(request, report, messages.SUCCESS)


# Actions that cannot be undone ask first: a cancelled campaign never calls again.
CONFIRM = {
    "cancel": (
        _("Cancel these campaigns?"),
        _("A cancelled campaign never calls again: it cannot be resumed or restarted."),
    ),
}


def _action(name: str, label: str):
    def action(modeladmin, request, queryset):
        if name in CONFIRM:
            question, consequence = CONFIRM[name]
            asking = confirmed_or_ask(
                modeladmin,
                request,
                queryset,
                action=f"{name}_campaigns",
                question=question,
                consequence=consequence,
            )
            if asking is not None:
                return asking
        run_transition(modeladmin, request, queryset, name)

    action.__name__ = f"{name}_campaigns"
    action.short_description = label
    action.allowed_permissions = ("change",)
    return action


class AdHocFilter(admin.SimpleListFilter):
    """Campaigns made for the API's ad-hoc calls, or the others."""

    title = _("made for")
    parameter_name = "ad_hoc"

    def lookups(self, request, model_admin):
        return [("no", _("Campaign calling")), ("yes", _("Ad-hoc calls (API)"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(ad_hoc_key="")
        if self.value() == "no":
            return queryset.filter(ad_hoc_key="")
        return queryset


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ["name", "status", "progress", "completion_rate", "window", "start_at", "end_at"]
    list_filter = ["status", "window_policy", AdHocFilter]
    search_fields = ["name", "description"]
    readonly_fields = ["status", "created_by", "created_at", "updated_at"]
    inlines = [QuestionInline]
    actions = [
        _action("start", _("Start selected campaigns")),
        _action("pause", _("Pause selected campaigns")),
        _action("resume", _("Resume selected campaigns")),
        _action("cancel", _("Cancel selected campaigns")),
        _action("schedule", _("Schedule selected campaigns (start at their start time)")),
    ]
    fieldsets = [
        (None, {"fields": ["name", "description", "status", ("start_at", "end_at")]}),
        (
            _("Calling window"),
            {"fields": ["timezone", "window_policy", ("window_start", "window_end"), "weekdays"]},
        ),
        (
            _("Dialling rules"),
            {
                "fields": [
                    ("max_attempts", "max_concurrent_calls"),
                    ("retry_busy_minutes", "retry_no_answer_minutes"),
                    ("retry_failed_minutes", "retry_machine_minutes"),
                    ("completion_max_attempts", "completion_retry_minutes"),
                    "caller_id",
                    ("machine_detection", "machine_policy"),
                    "voicemail_message",
                ]
            },
        ),
        (
            _("Survey"),
            {
                "fields": [
                    "intro_message",
                    "closing_message",
                    ("voice", "language"),
                    ("opt_out_key", "callback_key", "callback_delay_minutes"),
                    ("opt_out_message", "callback_message"),
                ]
            },
        ),
        (_("Record"), {"fields": ["created_by", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        # Progress counts from the contact tallies (contacts.tallies: a few rows per campaign,
        # however many contacts), one query for the whole page; "done" and "callable" as
        # calls.reports.stats defines them (excluded contacts are neither).
        def contacts(condition):
            return Coalesce(Sum("tallies__n", filter=condition), 0)

        return (
            super()
            .get_queryset(request)
            .annotate(
                contacts_callable=contacts(~Q(tallies__state="excluded")),
                contacts_done=contacts(
                    Q(tallies__state__in=["completed", "refused", "exhausted", "invalid"])
                ),
                contacts_completed=contacts(Q(tallies__state="completed")),
            )
        )

    @admin.display(description=_("Done / callable"))
    def progress(self, obj):
        return f"{getattr(obj, 'contacts_done', 0)} / {getattr(obj, 'contacts_callable', 0)}"

    @admin.display(description=_("Completion rate"))
    def completion_rate(self, obj):
        callable_contacts = getattr(obj, "contacts_callable", 0)
        if not callable_contacts:
            return "–"
        return f"{100 * obj.contacts_completed / callable_contacts:.0f}%"

    @admin.display(description=_("Window"))
    def window(self, obj):
        return f"{obj.window_start:%H:%M}–{obj.window_end:%H:%M} ({obj.window_policy})"

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    form = QuestionForm
    fields = ["campaign", *QuestionInline.fields]
    list_display = ["campaign", "position", "kind", "prompt"]
    list_filter = ["kind", "campaign"]
    search_fields = ["prompt", "campaign__name"]
    list_select_related = ["campaign"]
