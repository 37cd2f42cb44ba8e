"""API for contacts and the do-not-call list, and the CSV imports."""

import django_filters
import phonenumbers
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from campaigns.models import Campaign
from contacts.editing import (
    add_contact,
    add_exclusion,
    apply_exclusion,
    exclusions_for,
    remove_exclusions,
    update_contact,
)
from contacts.importing import import_contacts, import_exclusions
from contacts.models import Contact, Exclusion
from contacts.phones import InvalidPhone, normalise_phone
from voicesurvey.api_common import check_upload_size
from voicesurvey.api_input import DateTimeFilter, FilterSet, PhoneField
from voicesurvey.api_schema import error_response

# --- serializers ------------------------------------------------------------------------------


def _phone(value: str, region: str | None = None) -> str:
    try:
        return normalise_phone(value, region)
    except InvalidPhone as exc:
        raise serializers.ValidationError(str(exc)) from exc


class ContactSerializer(serializers.ModelSerializer):
    phone = PhoneField(
        max_length=40,
        help_text="Any format; stored in E.164 (national numbers are read in "
        "the DEFAULT_REGION setting's country).",
    )
    timezones = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        help_text="IANA zones; empty: derived from the number (or the campaign's zone).",
    )

    class Meta:
        model = Contact
        fields = [
            "id",
            "campaign",
            "phone",
            "name",
            "external_id",
            "language",
            "attributes",
            "timezones",
            "timezone_key",
            "state",
            "attempts_count",
            "completion_attempts_count",
            "last_attempt_at",
            "next_attempt_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "timezone_key",
            "state",
            "attempts_count",
            "completion_attempts_count",
            "last_attempt_at",
            "next_attempt_at",
            "created_at",
            "updated_at",
        ]
        validators: list = []  # (campaign, phone) is checked after the phone is normalised

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            fields["campaign"].read_only = True  # a contact never moves to another campaign
        return fields

    def validate_phone(self, value):
        return _phone(value)

    def validate_timezones(self, value):
        from campaigns.windows import is_valid_zone

        unknown = [z for z in value if not is_valid_zone(z)]
        if unknown:
            raise serializers.ValidationError(f"Unknown time zone {unknown[0]!r}.")
        return sorted(set(value))

    def validate_attributes(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Give an object of names to values.")
        return value

    def validate(self, attrs):
        campaign = attrs.get("campaign") or getattr(self.instance, "campaign", None)
        phone = attrs.get("phone")
        if campaign is not None and phone:
            clash = Contact.objects.filter(campaign=campaign, phone=phone)
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise serializers.ValidationError(
                    {"phone": f"{phone} is already a contact of this campaign."}
                )
        return attrs

    def create(self, validated_data):
        campaign = validated_data.pop("campaign")
        return add_contact(campaign=campaign, fields=validated_data)

    def update(self, instance, validated_data):
        return update_contact(contact=instance, fields=validated_data)


class ExclusionSerializer(serializers.ModelSerializer):
    phone = PhoneField(max_length=40, help_text="Any format; stored in E.164.")
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    source = serializers.ChoiceField(choices=Exclusion.Source.choices, default=Exclusion.Source.API)

    class Meta:
        model = Exclusion
        fields = [
            "id",
            "phone",
            "campaign",
            "reason",
            "source",
            "expires_at",
            "created_by",
            "created_at",
        ]
        read_only_fields = ["created_at"]
        validators: list = []  # uniqueness per scope: contacts.editing.add_exclusion

    def validate_phone(self, value):
        return _phone(value)

    def validate(self, attrs):
        if self.instance is not None:
            phone = attrs.get("phone", self.instance.phone)
            campaign = attrs.get("campaign", self.instance.campaign)
            clash = Exclusion.objects.filter(phone=phone, campaign=campaign).exclude(
                pk=self.instance.pk
            )
            if clash.exists():
                raise serializers.ValidationError(
                    {"phone": "This number is already excluded in that scope."}
                )
        return attrs

    def create(self, validated_data):
        return add_exclusion(**validated_data)

    @transaction.atomic
    def update(self, instance, validated_data):
        was = instance.phone
        exclusion = super().update(instance, validated_data)
        apply_exclusion(exclusion, was=was)
        return exclusion


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="CSV, UTF-8 (with or without BOM) or UTF-16; `,`, `;` or tab."
    )
    default_region = serializers.CharField(
        required=False,
        max_length=3,
        help_text="Country (ISO 3166 alpha-2, e.g. US, FR) for numbers written without +code; "
        "default: the DEFAULT_REGION setting.",
    )

    def validate_default_region(self, value):
        value = value.strip().upper()
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise serializers.ValidationError(f"Unknown region {value!r}; use e.g. US or FR.")
        return value


class ExclusionImportRequestSerializer(ImportRequestSerializer):
    campaign = serializers.PrimaryKeyRelatedField(
        queryset=Campaign.objects.all(),
        required=False,
        allow_null=True,
        help_text="Exclude from this campaign only; empty: from every campaign.",
    )


class RejectionSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="Line of the file (the header is line 1).")
    reason = serializers.CharField()
    value = serializers.CharField(help_text="The value at fault (phone numbers masked).")
    last_line = serializers.IntegerField(
        help_text="The row's last line: after `line` when a quoted field spans lines (an "
        "unbalanced quote swallows the rows up to it)."
    )


class ImportReportSerializer(serializers.Serializer):
    rows = serializers.IntegerField(help_text="Data rows read (blank lines not counted).")
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField(
        help_text="Rows skipped: the number was earlier in the file or already there."
    )
    excluded = serializers.IntegerField(
        help_text="Of the created contacts, those on the do-not-call list (state excluded)."
    )
    rejected = serializers.IntegerField(help_text="Rows with bad data, none of them written.")
    rejections = RejectionSerializer(many=True, help_text="The first 100 rejections.")
    rejections_truncated = serializers.BooleanField(
        help_text="True when more rows were rejected than are listed."
    )


class ExclusionCheckSerializer(serializers.Serializer):
    phone = serializers.CharField(help_text="The number, in E.164.")
    campaign = serializers.IntegerField(allow_null=True)
    excluded = serializers.BooleanField(
        help_text="With a campaign: the number may not be called in it. Without: it may not "
        "be called in any campaign (a global entry)."
    )
    exclusions = ExclusionSerializer(many=True, help_text="The entries in force.")


IMPORT_RESPONSES = {
    200: ImportReportSerializer,
    400: error_response(
        "The file as a whole cannot be read (empty, binary, no phone column, a line too long "
        "half-way…); nothing was imported."
    ),
    413: error_response("The upload is larger than IMPORT_MAX_UPLOAD_BYTES."),
}


# --- filters ----------------------------------------------------------------------------------


class PhoneFilter(django_filters.CharFilter):
    """Exact phone, given in any format (normalised like the stored numbers)."""

    def filter(self, qs, value):
        if value in (None, ""):
            return qs
        try:
            phone = normalise_phone(value)
        except InvalidPhone as exc:
            raise serializers.ValidationError({self.field_name: [str(exc)]}) from exc
        return qs.filter(phone=phone)


class ContactFilter(FilterSet):
    phone = PhoneFilter(help_text="Exact number, any format.")
    state = django_filters.MultipleChoiceFilter(choices=Contact.State.choices)
    next_attempt_before = DateTimeFilter(field_name="next_attempt_at", lookup_expr="lt")

    class Meta:
        model = Contact
        fields = ["campaign", "phone", "state", "external_id", "language"]


class ExclusionFilter(FilterSet):
    phone = PhoneFilter(help_text="Exact number, any format.")
    scope = django_filters.ChoiceFilter(
        choices=[("global", "Global (every campaign)"), ("campaign", "One campaign")],
        method="filter_scope",
    )
    active = django_filters.BooleanFilter(method="filter_active", help_text="In force now.")

    class Meta:
        model = Exclusion
        fields = ["phone", "campaign", "source"]

    def filter_scope(self, qs, name, value):
        return qs.filter(campaign__isnull=(value == "global"))

    def filter_active(self, qs, name, value):
        in_force = Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        return qs.filter(in_force) if value else qs.exclude(in_force)


# --- views ------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List contacts"),
    retrieve=extend_schema(summary="Get a contact"),
    create=extend_schema(
        summary="Add a contact",
        description="A number on the do-not-call list is added with state `excluded`.",
    ),
    update=extend_schema(summary="Replace a contact's details"),
    partial_update=extend_schema(summary="Change some of a contact's details"),
    destroy=extend_schema(summary="Delete a contact and its calls"),
)
class ContactViewSet(viewsets.ModelViewSet):
    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    search_fields = ["name", "external_id", "phone"]
    ordering_fields = ["id", "name", "state", "attempts_count", "next_attempt_at", "created_at"]
    ordering = ["id"]


CHECK_RESPONSES = {
    200: ExclusionCheckSerializer,
    400: error_response("No phone, or not a phone number."),
}


class ExclusionCheckQuerySerializer(serializers.Serializer):
    phone = serializers.CharField()
    campaign = serializers.PrimaryKeyRelatedField(queryset=Campaign.objects.all(), required=False)

    def validate_phone(self, value):
        return _phone(value)


@extend_schema_view(
    list=extend_schema(summary="List do-not-call entries"),
    retrieve=extend_schema(summary="Get a do-not-call entry"),
    create=extend_schema(summary="Put a number on the do-not-call list"),
    update=extend_schema(summary="Replace a do-not-call entry"),
    partial_update=extend_schema(summary="Change a do-not-call entry"),
    destroy=extend_schema(summary="Take a number off the do-not-call list"),
)
class ExclusionViewSet(viewsets.ModelViewSet):
    """The do-not-call list. No campaign means every campaign."""

    queryset = Exclusion.objects.select_related("created_by")
    serializer_class = ExclusionSerializer
    filterset_class = ExclusionFilter
    search_fields = ["phone", "reason"]
    ordering_fields = ["id", "created_at", "expires_at", "phone"]
    ordering = ["-created_at", "-id"]
    action_permissions = {
        "check": ["contacts.view_exclusion"],
        "import_csv": ["contacts.add_exclusion"],
    }

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)

    def perform_destroy(self, instance):
        remove_exclusions([instance])

    @extend_schema(
        methods=["GET"],
        summary="Is this number on the do-not-call list?",
        parameters=[
            OpenApiParameter("phone", OpenApiTypes.STR, required=True, description="Any format."),
            OpenApiParameter(
                "campaign",
                OpenApiTypes.INT,
                description="Check for this campaign (its own entries and the global ones).",
            ),
        ],
        responses=CHECK_RESPONSES,
    )
    @extend_schema(
        methods=["POST"],
        summary="Is this number on the do-not-call list? (number in the body, not the URL)",
        description="The same check as GET, with the number kept out of URLs and so out of "
        "every access log between the client and us. Needs only view_exclusion.",
        request=ExclusionCheckQuerySerializer,
        responses=CHECK_RESPONSES,
    )
    @action(detail=False, methods=["get", "post"])
    def check(self, request):
        # POST carries the number in the body, where no access log or proxy records it.
        query = ExclusionCheckQuerySerializer(
            data=request.data if request.method == "POST" else request.query_params
        )
        query.is_valid(raise_exception=True)
        phone = query.validated_data["phone"]
        campaign = query.validated_data.get("campaign")
        campaign_id = campaign.pk if campaign else None
        found = exclusions_for(phone, campaign_id=campaign_id, now=timezone.now())
        excluded = bool(found) if campaign_id else any(e.campaign_id is None for e in found)
        return Response(
            {
                "phone": phone,
                "campaign": campaign_id,
                "excluded": excluded,
                "exclusions": ExclusionSerializer(found, many=True).data,
            }
        )

    @extend_schema(
        summary="Import numbers to the do-not-call list from CSV",
        description="Columns: `phone` (required), `reason`, `expires_at` (ISO date). Numbers "
        "already listed in the scope are counted as duplicates and left as they are.",
        request={"multipart/form-data": ExclusionImportRequestSerializer},
        responses=IMPORT_RESPONSES,
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[MultiPartParser, FormParser],
    )
    def import_csv(self, request):
        check_upload_size(request)
        form = ExclusionImportRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        check_upload_size(request, form.validated_data["file"])
        report = import_exclusions(
            stream=form.validated_data["file"],
            campaign=form.validated_data.get("campaign"),
            default_region=form.validated_data.get("default_region"),
            created_by=request.user,
        )
        return Response(report.as_dict())


class CampaignContactImportActions:
    """The campaign's `contacts/import` action; mixed into the campaign viewset by
    voicesurvey/api.py (campaigns must not import contacts)."""

    action_permissions = {"contacts_import": ["contacts.add_contact"]}

    @extend_schema(
        summary="Import contacts from CSV",
        description="Columns: `phone` (required), `name`, `external_id`, `language`, "
        "`timezone` (IANA zones separated by spaces or |); any other column is kept in the "
        "contact's attributes. Duplicates are skipped, numbers on the do-not-call list are "
        "imported as `excluded`, bad rows are rejected with their line and reason.",
        request={"multipart/form-data": ImportRequestSerializer},
        responses=IMPORT_RESPONSES,
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="contacts/import",
        parser_classes=[MultiPartParser, FormParser],
    )
    def contacts_import(self, request, pk=None):
        check_upload_size(request)
        campaign = self.get_object()
        form = ImportRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        check_upload_size(request, form.validated_data["file"])
        report = import_contacts(
            campaign=campaign,
            stream=form.validated_data["file"],
            default_region=form.validated_data.get("default_region"),
            created_by=request.user,
        )
        return Response(report.as_dict())
