"""The admin's contact and do-not-call forms: a number typed as people write it, read in the
region shown beside it; a contact's zones as a list, its state never typed."""

import phonenumbers
from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from campaigns.forms import ListEditor
from campaigns.windows import is_valid_zone
from contacts.models import Contact, Exclusion
from contacts.phones import InvalidPhone, normalise_phone


class PhoneRegionMixin(forms.Form):
    """A `region` beside the `phone` field: a number written without +country code is read
    as a number of that region (the project's DEFAULT_REGION unless changed)."""

    phone = forms.CharField(label=_("Phone"), max_length=40)  # as typed; stored as E.164
    region = forms.CharField(
        label=_("Region of national numbers"),
        max_length=2,
        required=False,
        widget=forms.TextInput(attrs={"size": 3}),
        help_text=_(
            "Country of a number written without +country code, e.g. US, GB, FR: "
            "(212) 555-0148 is read as +1 212 555 0148 in US."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].initial = settings.DEFAULT_REGION
        self.fields["phone"].help_text = _(
            "Any format: +44 20 7946 0018, or a national number of the region below."
        )

    def clean_region(self):
        region = (self.cleaned_data.get("region") or "").strip().upper()
        if region and region not in phonenumbers.SUPPORTED_REGIONS:
            raise forms.ValidationError(_("Unknown region (use a code such as US or FR)."))
        return region or None

    def clean(self):
        data = super().clean()
        phone = data.get("phone")
        if phone and "region" not in self.errors:
            try:
                data["phone"] = normalise_phone(phone, data.get("region"))
            except InvalidPhone as exc:
                self.add_error("phone", str(exc))
        return data

    def _post_clean(self):
        # The E.164 form of the number is what the model's checks see.
        if "phone" in getattr(self, "cleaned_data", {}):
            self.instance.phone = self.cleaned_data["phone"]
        super()._post_clean()


class ZoneListField(forms.Field):
    widget = ListEditor

    def to_python(self, value):
        zones = []
        for item in value or []:
            item = str(item).strip()
            if item and item not in zones:
                zones.append(item)
        return zones

    def validate(self, value):
        super().validate(value)
        unknown = [zone for zone in value if not is_valid_zone(zone)]
        if unknown:
            raise forms.ValidationError(
                _("Unknown time zone: %(zones)s.") % {"zones": ", ".join(unknown)}
            )


class ContactForm(PhoneRegionMixin, forms.ModelForm):
    timezones = ZoneListField(
        label=_("Time zones"),
        required=False,
        widget=ListEditor(add_label=_("Add a zone"), blank=1, size=22),
        help_text=_("IANA zones, e.g. America/Chicago; none: derived from the number."),
    )

    class Meta:
        model = Contact
        fields = ["campaign", "phone", "name", "external_id", "language", "timezones", "attributes"]
        # the state, the counters and the next attempt time move through the buttons only

    field_order = ["campaign", "phone", "region", "name"]


class ExclusionForm(PhoneRegionMixin, forms.ModelForm):
    class Meta:
        model = Exclusion
        fields = ["phone", "campaign", "reason", "source", "expires_at"]

    field_order = ["phone", "region", "campaign"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].empty_label = _("Global (every campaign)")

    def clean(self):
        data = super().clean()
        phone, campaign = data.get("phone"), data.get("campaign")
        if phone and "phone" not in self.errors:
            listed = Exclusion.objects.filter(phone=phone, campaign=campaign)
            if listed.exclude(pk=self.instance.pk).exists():
                where = campaign.name if campaign else _("the global scope (every campaign)")
                self.add_error(
                    "phone",
                    _("%(phone)s is already on the do-not-call list of %(where)s.")
                    % {"phone": phone, "where": where},
                )
        return data


class DoNotCallForm(forms.Form):
    """The contact page's "Do not call" button: where the number is excluded, and why."""

    everywhere = forms.TypedChoiceField(
        label=_("Do not call this number"),
        choices=[
            ("1", _("in every campaign (global)")),
            ("0", _("in this contact's campaign only")),
        ],
        coerce=lambda v: v == "1",
        initial="1",
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)
