from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from campaigns.models import Campaign
from contacts.editing import (
    add_contact,
    apply_exclusion,
    exclude_contacts,
    remove_exclusions,
    reset_contacts,
    retry_contacts_now,
    update_contact,
)
from contacts.exporting import iter_contacts_csv
from contacts.forms import ContactForm, DoNotCallForm, ExclusionForm
from contacts.importing import ImportFileError, ImportReport, import_contacts, import_exclusions
from contacts.models import Contact, Exclusion
from contacts.phones import phone_search
from contacts.rejected_rows import keep_rejected_rows, rejected_rows_csv, rejected_rows_for
from contacts.tallies import count_contacts
from voicesurvey.admin_autocomplete import CheckedAutocompleteMixin
from voicesurvey.times import callee_time, operator_time

PHONE_SEARCH_HELP = format_lazy(
    gettext_lazy(
        "Search by name, id or phone number in any format: 555-0148, (212) 555-0148 or "
        "+1 212 555 0148 (a full national number is read as {region})."
    ),
    region=settings.DEFAULT_REGION,
)


class PhoneSearchMixin:
    """The list's search also finds numbers typed as people write them (contacts.phones.
    phone_search): the digits are matched against the stored E.164 numbers."""

    phone_search_field = "phone"

    def may_search_phones(self, request) -> bool:
        return True

    def get_search_results(self, request, queryset, search_term):
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        by_number = None
        if self.may_search_phones(request):
            by_number = phone_search(search_term, self.phone_search_field)
        if by_number is None:
            return found, may_have_duplicates
        return found | queryset.filter(by_number), may_have_duplicates


def both_clocks(at, zones: list[str], *, seconds: bool = False) -> str:
    """A list cell: the operator's time, and the callee's beneath it."""
    if at is None:
        return "–"
    return format_html(
        '{}<br><span class="vs-quiet">{} {}</span>',
        operator_time(at, seconds=seconds),
        callee_time(at, zones),
        _("callee"),
    )


def csv_response(rows, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class CsvExportMixin:
    """An "Export CSV" link on the changelist: the rows the list shows, with its filters and
    search applied (the same GET parameters), streamed. `export_permissions` are the ones the
    API asks for the same data."""

    export_permissions: tuple[str, ...] = ()

    def may_export(self, request) -> bool:
        return self.has_view_permission(request) and request.user.has_perms(self.export_permissions)

    def export_rows(self, request, queryset):
        raise NotImplementedError

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_export"
        return [
            path("export.csv", self.admin_site.admin_view(self.export_view), name=name)
        ] + super().get_urls()

    def export_view(self, request):
        if not self.may_export(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return redirect(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        queryset = changelist.get_queryset(request)
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        return csv_response(
            self.export_rows(request, queryset), f"{self.opts.model_name}s-{stamp}.csv"
        )

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "may_export": self.may_export(request)}
        return super().changelist_view(request, extra_context)


class CsvImportForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("CSV file"))
    default_region = forms.CharField(
        max_length=2,
        required=False,
        initial=settings.DEFAULT_REGION,
        help_text=gettext_lazy(
            "Country of numbers written without +country code, e.g. US, GB, FR."
        ),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.IMPORT_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %d MB.") % (settings.IMPORT_MAX_UPLOAD_BYTES // 2**20)
            )
        return upload

    def clean_default_region(self):
        return self.cleaned_data["default_region"].strip().upper() or None


class ContactImportForm(CsvImportForm):
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.exclude(status__in=Campaign.FINAL_STATUSES),
        help_text=gettext_lazy(
            "The campaign the contacts are called for (not a completed or cancelled one)."
        ),
    )
    field_order = ["campaign", "file", "default_region"]


class ExclusionImportForm(CsvImportForm):
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.all(),
        required=False,
        empty_label=gettext_lazy("Global (every campaign)"),
        help_text=gettext_lazy("Scope of the exclusions."),
    )
    field_order = ["campaign", "file", "default_region"]


class CsvImportAdminMixin:
    """An "Import CSV" page on the changelist: a form, then the import function's per-row
    report (the API's import runs the same function and returns the same report).

    Who may read the rows (the model's view permission) sees each rejected value as written
    and may download the rejected rows as CSV to fix and import again; anyone else sees the
    numbers masked, as the API shows them."""

    import_form_class: type[CsvImportForm]
    import_columns: str  # what the file may contain, shown above the form
    import_kind: str  # RejectedImportRows.Kind

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("import/", view(self.import_view), name=f"{prefix}_import"),
            path(
                "import/rejected/<int:pk>.csv",
                view(self.rejected_rows_view),
                name=f"{prefix}_import_rejected",
            ),
        ] + super().get_urls()

    def run_import(self, request, data) -> ImportReport:
        raise NotImplementedError

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        may_read = self.has_view_permission(request)
        report = kept = None
        if request.method == "POST":
            form = self.import_form_class(request.POST, request.FILES)
            if form.is_valid():
                try:
                    report = self.run_import(request, form.cleaned_data)
                except ImportFileError as exc:
                    self.message_user(request, _("Nothing was imported: %s") % exc, messages.ERROR)
                else:
                    self.message_user(
                        request,
                        _(
                            "Read %(rows)d rows: %(created)d created, %(duplicates)d duplicates, "
                            "%(excluded)d excluded, %(rejected)d rejected."
                        )
                        % vars(report),
                        messages.WARNING if report.rejected else messages.SUCCESS,
                    )
                    if may_read:
                        kept = keep_rejected_rows(
                            report, kind=self.import_kind, by=request.user, now=timezone.now()
                        )
        else:
            form = self.import_form_class(initial={"campaign": request.GET.get("campaign")})
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import %s from CSV") % self.opts.verbose_name_plural,
            "opts": self.opts,
            "form": form,
            "report": report,
            "may_read_values": may_read,
            "rejected_rows": kept,
            "columns_help": self.import_columns,
            "has_view_permission": may_read,
        }
        return TemplateResponse(request, "admin/voicesurvey/import_csv.html", context)

    def rejected_rows_view(self, request, pk: int):
        """The rejected rows of the user's own recent import, as CSV."""
        if not (self.has_view_permission(request) and self.has_add_permission(request)):
            raise PermissionDenied
        kept = rejected_rows_for(pk, user=request.user, now=timezone.now())
        if kept is None or kept.kind != self.import_kind:
            raise Http404(_("These rows are no longer kept: import the file again."))
        response = HttpResponse(rejected_rows_csv(kept), content_type="text/csv; charset=utf-8")
        name = f"rejected-{self.import_kind}-{kept.created_at:%Y%m%d-%H%M%S}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


def contact_done_message(done: int, asked: int, what: str, why_not: str) -> str:
    text = ngettext("%(n)d contact %(what)s.", "%(n)d contacts %(what)s.", done) % {
        "n": done,
        "what": what,
    }
    if done < asked:
        text += " " + _("%(n)d left as they were: %(why)s") % {"n": asked - done, "why": why_not}
    return text


def contact_tool(tool_id: str, label: str, url_name: str, contact, *, post=True) -> dict:
    """A button on the contact page: a form posting to `url_name`, or a link (`post=False`)."""
    return {
        "id": tool_id,
        "label": label,
        "url": reverse(url_name, args=[contact.pk]),
        "post": post,
    }


RETRY_WHY_NOT = gettext_lazy("only contacts waiting for their retry delay can be called sooner.")
RESET_WHY_NOT = gettext_lazy(
    "a contact on a call, who opted out, on the do-not-call list, with an invalid number or in "
    "a finished campaign is not reset."
)


# The contact list's parameters that leave its count to the tallies: its two filters, and those
# that only page or order it.
TALLIED_FILTERS = {"campaign__id__exact": "campaign_id", "state__exact": "state"}
NOT_FILTERS = {"p", "o", "all"}


def tallied_filters(params) -> dict | None:
    """count_contacts' arguments for the contact list's parameters, or None when they do
    more than filter by campaign and state."""
    filters = {}
    for name in params:
        values = params.getlist(name)
        if name in NOT_FILTERS or (name == "q" and values == [""]):
            continue
        if name not in TALLIED_FILTERS or len(values) != 1:
            return None
        filters[TALLIED_FILTERS[name]] = values[0]
    if "campaign_id" in filters:
        try:
            filters["campaign_id"] = int(filters["campaign_id"])
        except ValueError:
            return None
    return filters


@admin.register(Contact)
class ContactAdmin(
    CheckedAutocompleteMixin,
    PhoneSearchMixin,
    CsvExportMixin,
    CsvImportAdminMixin,
    admin.ModelAdmin,
):
    """A contact's state is never typed: it moves through the domain's functions, as buttons
    on the contact page and as bulk actions (retry now, reset, do not call)."""

    form = ContactForm
    list_display = [
        "phone",
        "name",
        "campaign",
        "state",
        "calls",
        "last_attempt",
        "next_attempt",
    ]
    list_filter = ["state", "campaign"]
    search_fields = ["phone", "name", "external_id"]
    search_help_text = PHONE_SEARCH_HELP
    list_select_related = ["campaign"]
    autocomplete_fields = ["campaign"]
    readonly_fields = [
        "state",
        "callee_time_now",
        "next_attempt_at",
        "timezone_key",
        "attempts_count",
        "last_attempt_number",
        "completion_attempts_count",
        "last_attempt_at",
        "created_at",
        "updated_at",
    ]
    actions = ["retry_now", "reset", "do_not_call_everywhere", "do_not_call_in_campaign"]
    show_full_result_count = False  # COUNT(*) over millions of contacts on every page is slow
    export_permissions = ("contacts.view_contact",)

    import_form_class = ContactImportForm
    import_kind = "contacts"
    import_columns = gettext_lazy(
        "A header row with a phone column; name, external_id, language and timezone are "
        "recognised, any other column is kept for the survey's placeholders. Numbers on the "
        "do-not-call list are imported as excluded; numbers already in the campaign are skipped."
    )

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        """The list's count from the contact tallies when it is filtered by campaign and/or
        state only (the list as it opens, and a campaign's contacts): O(campaigns), where
        COUNT(*) reads every matching contact. Any search or other filter counts as usual."""
        paginator = super().get_paginator(
            request, queryset, per_page, orphans, allow_empty_first_page
        )
        filters = tallied_filters(request.GET)
        if filters is not None:
            paginator.count = count_contacts(**filters)  # Paginator.count is a cached_property
        return paginator

    def get_fieldsets(self, request, obj=None):
        details = ["campaign", ("phone", "region"), "name", "external_id", "language"]
        if obj is None:
            return [(None, {"fields": [*details, "timezones", "attributes"]})]
        return [
            (None, {"fields": [*details, "state"]}),
            (
                _("Calling"),
                {
                    "fields": [
                        ("next_attempt_at", "last_attempt_at"),
                        ("attempts_count", "completion_attempts_count", "last_attempt_number"),
                        "timezones",
                        "callee_time_now",
                    ]
                },
            ),
            (_("Attributes (survey placeholders)"), {"fields": ["attributes"]}),
            (_("Record"), {"fields": [("created_at", "updated_at")]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        fixed = ["campaign"] if obj is not None else []  # a contact belongs to one campaign
        return fixed + list(super().get_readonly_fields(request, obj))

    @admin.display(description=gettext_lazy("Last call"), ordering="last_attempt_at")
    def last_attempt(self, obj):
        return both_clocks(obj.last_attempt_at, obj.zones)

    @admin.display(description=gettext_lazy("Next call from"), ordering="next_attempt_at")
    def next_attempt(self, obj):
        if obj.state not in Contact.CALLABLE_STATES:
            return "–"
        if obj.next_attempt_at <= timezone.now():
            return _("due now (in its calling window)")
        return both_clocks(obj.next_attempt_at, obj.zones)

    @admin.display(description=gettext_lazy("Calls"), ordering="attempts_count")
    def calls(self, obj):
        return obj.attempts_count

    @admin.display(description=gettext_lazy("Callee's time now"))
    def callee_time_now(self, obj):
        if obj is None or not obj.timezone_key:
            return "–"
        return callee_time(timezone.now(), obj.zones, named=True)

    def save_model(self, request, obj, form, change):
        """Through the domain's functions: a new contact is checked against the do-not-call
        list; a changed number gets its zones derived again."""
        fields = {name: form.cleaned_data[name] for name in form.changed_data if name != "region"}
        if "phone" in form.cleaned_data:
            fields["phone"] = form.cleaned_data["phone"]
        if change:
            saved = update_contact(contact=Contact.objects.get(pk=obj.pk), fields=fields)
        else:
            campaign = fields.pop("campaign", None) or form.cleaned_data["campaign"]
            saved = add_contact(campaign=campaign, fields=fields)
        for field in Contact._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False

    # --- moves: bulk actions, and the contact page's buttons ---------------------------------

    def has_add_exclusion_permission(self, request) -> bool:
        return request.user.has_perm("contacts.add_exclusion")

    @admin.action(description=gettext_lazy("Call sooner: retry now"), permissions=["change"])
    def retry_now(self, request, queryset):
        done = retry_contacts_now(queryset, now=timezone.now())
        what = _("due now (called within its calling window)")
        asked = queryset.count()
        self.message_user(request, contact_done_message(done, asked, what, RETRY_WHY_NOT))

    @admin.action(
        description=gettext_lazy("Reset: call again with a fresh attempt budget"),
        permissions=["change"],
    )
    def reset(self, request, queryset):
        done = reset_contacts(queryset, now=timezone.now())
        what = _("reset to pending")
        asked = queryset.count()
        self.message_user(request, contact_done_message(done, asked, what, RESET_WHY_NOT))

    @admin.action(
        description=gettext_lazy("Do not call: add the numbers to the global do-not-call list"),
        permissions=["add_exclusion"],
    )
    def do_not_call_everywhere(self, request, queryset):
        self._exclude(request, queryset, everywhere=True, reason="")

    @admin.action(
        description=gettext_lazy("Do not call: add the numbers to their campaign's list"),
        permissions=["add_exclusion"],
    )
    def do_not_call_in_campaign(self, request, queryset):
        self._exclude(request, queryset, everywhere=False, reason="")

    def _exclude(self, request, queryset, *, everywhere: bool, reason: str) -> None:
        added, excluded = exclude_contacts(
            queryset, everywhere=everywhere, reason=reason, by=request.user
        )
        self.message_user(
            request,
            _("%(added)d do-not-call entries added; %(excluded)d contacts now excluded.")
            % {"added": added, "excluded": excluded},
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:object_id>/retry-now/", view(self.retry_now_view), name="contact_retry"),
            path("<int:object_id>/reset/", view(self.reset_view), name="contact_reset"),
            path(
                "<int:object_id>/do-not-call/",
                view(self.do_not_call_view),
                name="contact_do_not_call",
            ),
        ] + super().get_urls()

    def _contact_for(self, request, object_id, may) -> Contact:
        contact = get_object_or_404(Contact.objects.select_related("campaign"), pk=object_id)
        if not may(contact):
            raise PermissionDenied
        return contact

    def _back(self, contact) -> HttpResponseRedirect:
        return redirect("admin:contacts_contact_change", contact.pk)

    def retry_now_view(self, request, object_id):
        if request.method != "POST":
            return self._back(get_object_or_404(Contact, pk=object_id))
        contact = self._contact_for(
            request, object_id, lambda c: self.has_change_permission(request, c)
        )
        self.retry_now(request, Contact.objects.filter(pk=contact.pk))
        return self._back(contact)

    def reset_view(self, request, object_id):
        if request.method != "POST":
            return self._back(get_object_or_404(Contact, pk=object_id))
        contact = self._contact_for(
            request, object_id, lambda c: self.has_change_permission(request, c)
        )
        self.reset(request, Contact.objects.filter(pk=contact.pk))
        return self._back(contact)

    def do_not_call_view(self, request, object_id):
        """Where the number is excluded, and why: a small form, then back to the contact."""
        contact = self._contact_for(
            request,
            object_id,
            lambda c: (
                self.has_view_permission(request, c) and self.has_add_exclusion_permission(request)
            ),
        )
        form = DoNotCallForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                self._exclude(
                    request,
                    Contact.objects.filter(pk=contact.pk),
                    everywhere=form.cleaned_data["everywhere"],
                    reason=form.cleaned_data["reason"],
                )
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                return self._back(contact)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Do not call %(contact)s") % {"contact": contact.name or contact.phone},
            "opts": self.opts,
            "original": contact,
            "contact": contact,
            "form": form,
        }
        return TemplateResponse(request, "admin/contacts/contact/do_not_call.html", context)

    def contact_tools(self, request, contact) -> list[dict]:
        """The buttons on the contact page the user may use."""
        tools = []
        if self.has_change_permission(request, contact):
            if contact.state in Contact.CALLABLE_STATES:
                tools.append(
                    contact_tool("retry-now", _("Retry now"), "admin:contact_retry", contact)
                )
            tools.append(contact_tool("reset", _("Reset"), "admin:contact_reset", contact))
        if self.has_add_exclusion_permission(request):
            url = "admin:contact_do_not_call"
            tools.append(contact_tool("do-not-call", _("Do not call…"), url, contact, post=False))
        return tools

    def contact_page_context(self, request, contact) -> dict:
        """What the contact page shows beside the form (calls.contact_admin adds the history)."""
        return {"contact_tools": self.contact_tools(request, contact)}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # get_object: an id that is no contact's (or no number) falls to the admin's own answer.
        contact = self.get_object(request, object_id)
        extra = self.contact_page_context(request, contact) if contact else {}
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def export_rows(self, request, queryset):
        return iter_contacts_csv(queryset)

    def run_import(self, request, data) -> ImportReport:
        return import_contacts(
            campaign=data["campaign"],
            stream=data["file"],
            default_region=data["default_region"],
            created_by=request.user,
        )


GLOBAL_SCOPE = gettext_lazy("Global")


class ScopeFilter(admin.RelatedFieldListFilter):
    """The campaign filter, its "no campaign" choice named as everywhere else: Global."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.empty_value_display = GLOBAL_SCOPE
        self.title = gettext_lazy("scope")


@admin.register(Exclusion)
class ExclusionAdmin(PhoneSearchMixin, CsvImportAdminMixin, admin.ModelAdmin):
    form = ExclusionForm
    list_display = ["phone", "scope", "source", "reason", "created_by", "created_at", "expires_at"]
    list_filter = ["source", ("campaign", ScopeFilter)]
    search_fields = ["phone", "reason"]
    search_help_text = PHONE_SEARCH_HELP
    list_select_related = ["campaign", "created_by"]
    readonly_fields = ["created_by", "created_at"]

    import_form_class = ExclusionImportForm
    import_kind = "exclusions"
    import_columns = gettext_lazy(
        "A header row with a phone column; reason and expires_at (an ISO date or date-time; "
        "empty: never) are optional. Numbers already listed in that scope are skipped."
    )

    def get_fields(self, request, obj=None):
        return [
            ("phone", "region"),
            "campaign",
            "reason",
            "source",
            "expires_at",
            *(["created_by", "created_at"] if obj else []),
        ]

    @admin.display(description=gettext_lazy("Scope"))
    def scope(self, obj):
        return obj.campaign.name if obj.campaign_id else GLOBAL_SCOPE

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        excluded = apply_exclusion(obj, was=form.initial.get("phone"))
        if excluded:
            self.message_user(
                request,
                _("%d contact(s) waiting to be called with this number excluded.") % excluded,
            )

    def delete_model(self, request, obj):
        remove_exclusions([obj])

    def delete_queryset(self, request, queryset):
        remove_exclusions(queryset)

    def run_import(self, request, data) -> ImportReport:
        return import_exclusions(
            stream=data["file"],
            campaign=data["campaign"],
            default_region=data["default_region"],
            created_by=request.user,
        )
