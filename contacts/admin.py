from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path

from campaigns.models import Campaign
from contacts.editing import apply_exclusion, remove_exclusions
from contacts.importing import ImportFileError, ImportReport, import_contacts, import_exclusions
from contacts.models import Contact, Exclusion


class CsvImportForm(forms.Form):
    file = forms.FileField(label="CSV file")
    default_region = forms.CharField(
        max_length=2,
        required=False,
        initial=settings.DEFAULT_REGION,
        help_text="Country of numbers written without +country code, e.g. US, GB, FR.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.IMPORT_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {settings.IMPORT_MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
            )
        return upload

    def clean_default_region(self):
        return self.cleaned_data["default_region"].strip().upper() or None


class ContactImportForm(CsvImportForm):
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.exclude(status__in=Campaign.FINAL_STATUSES),
        help_text="The campaign the contacts are called for (not a completed or cancelled one).",
    )
    field_order = ["campaign", "file", "default_region"]


class ExclusionImportForm(CsvImportForm):
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.all(),
        required=False,
        empty_label="Every campaign (the global do-not-call list)",
        help_text="Scope of the exclusions.",
    )
    field_order = ["campaign", "file", "default_region"]


class CsvImportAdminMixin:
    """An "Import CSV" page on the changelist: a form, then the import function's per-row
    report (the API's import runs the same function and returns the same report)."""

    import_form_class: type[CsvImportForm]
    import_columns: str  # what the file may contain, shown above the form

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_import"
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name=name)
        ] + super().get_urls()

    def run_import(self, request, data) -> ImportReport:
        raise NotImplementedError

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        report = None
        if request.method == "POST":
            form = self.import_form_class(request.POST, request.FILES)
            if form.is_valid():
                try:
                    report = self.run_import(request, form.cleaned_data)
                except ImportFileError as exc:
                    self.message_user(request, f"Nothing was imported: {exc}", messages.ERROR)
                else:
                    self.message_user(
                        request,
                        f"Read {report.rows} rows: {report.created} created, "
                        f"{report.duplicates} duplicates, {report.excluded} excluded, "
                        f"{report.rejected} rejected.",
                        messages.WARNING if report.rejected else messages.SUCCESS,
                    )
        else:
            form = self.import_form_class(initial={"campaign": request.GET.get("campaign")})
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import {self.opts.verbose_name_plural} from CSV",
            "opts": self.opts,
            "form": form,
            "report": report,
            "columns_help": self.import_columns,
            "has_view_permission": self.has_view_permission(request),
        }
        return TemplateResponse(request, "admin/voicesurvey/import_csv.html", context)


@admin.register(Contact)
class ContactAdmin(CsvImportAdminMixin, admin.ModelAdmin):
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

    import_form_class = ContactImportForm
    import_columns = (
        "A header row with a phone column; name, external_id, language and timezone are "
        "recognised, any other column is kept for the survey's placeholders. Numbers on the "
        "do-not-call list are imported as excluded; numbers already in the campaign are skipped."
    )

    def run_import(self, request, data) -> ImportReport:
        return import_contacts(
            campaign=data["campaign"],
            stream=data["file"],
            default_region=data["default_region"],
            created_by=request.user,
        )


@admin.register(Exclusion)
class ExclusionAdmin(CsvImportAdminMixin, admin.ModelAdmin):
    list_display = ["phone", "scope", "source", "reason", "created_by", "created_at", "expires_at"]
    list_filter = ["source", "campaign"]
    search_fields = ["phone", "reason"]
    list_select_related = ["campaign", "created_by"]
    readonly_fields = ["created_by", "created_at"]

    import_form_class = ExclusionImportForm
    import_columns = (
        "A header row with a phone column; reason and expires_at (an ISO date or date-time; "
        "empty: never) are optional. Numbers already listed in that scope are skipped."
    )

    @admin.display(description="Scope")
    def scope(self, obj):
        return obj.campaign.name if obj.campaign_id else "All campaigns"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        excluded = apply_exclusion(obj, was=form.initial.get("phone"))
        if excluded:
            self.message_user(
                request, f"{excluded} contact(s) waiting to be called with this number excluded."
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
