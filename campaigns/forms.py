"""The admin's campaign and question forms: weekdays as boxes to tick, a question's settings
for its kind only, accepted answers as a list of entries (never JSON to type)."""

import json

from django import forms
from django.utils.translation import gettext_lazy as _

from campaigns.editing import QUESTION_FIELDS
from campaigns.models import Campaign, Question, default_weekdays

WEEKDAY_CHOICES = [
    (0, _("Monday")),
    (1, _("Tuesday")),
    (2, _("Wednesday")),
    (3, _("Thursday")),
    (4, _("Friday")),
    (5, _("Saturday")),
    (6, _("Sunday")),
]
KEYPAD = set("0123456789*#")


class WeekdaysField(forms.TypedMultipleChoiceField):
    """Days as ticked boxes, stored as the model's list of numbers (0 = Monday)."""

    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs):
        kwargs.setdefault("choices", WEEKDAY_CHOICES)
        kwargs.setdefault("coerce", int)
        kwargs.setdefault("error_messages", {"required": _("Tick at least one day.")})
        super().__init__(**kwargs)

    def clean(self, value):
        return sorted(super().clean(value))


class ListEditor(forms.Widget):
    """A list of short text entries, one input each, with a button to add one (JS adds it;
    without JS there are always a few empty inputs). Posted as the same name repeated."""

    template_name = "campaigns/widgets/list_editor.html"

    def __init__(self, attrs=None, *, blank=2, add_label=None, size=6):
        super().__init__(attrs)
        self.blank, self.add_label, self.size = blank, add_label or _("Add an entry"), size

    class Media:
        js = ["campaigns/list_editor.js"]

    def format_value(self, value):
        if isinstance(value, str):  # a re-shown form after an error: already a list here
            try:
                value = json.loads(value)
            except ValueError:
                value = [value]
        return [str(item) for item in (value or [])]

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        items = context["widget"]["value"]
        context["widget"]["items"] = items + [""] * self.blank
        context["widget"]["add_label"] = self.add_label
        context["widget"]["size"] = self.size
        return context

    def value_from_datadict(self, data, files, name):
        if hasattr(data, "getlist"):
            return data.getlist(name)
        value = data.get(name)
        return value if isinstance(value, list) else ([value] if value is not None else [])

    def value_omitted_from_data(self, data, files, name):
        return False  # an empty list is posted as no value at all


class KeypadAnswersField(forms.Field):
    """The keypad entries a digits question accepts, e.g. 1, 2, 3 or 10, 20; none: any."""

    widget = ListEditor

    def to_python(self, value):
        answers = []
        for item in value or []:
            item = str(item).strip()
            if item and item not in answers:
                answers.append(item)
        return answers

    def validate(self, value):
        super().validate(value)
        wrong = [a for a in value if not set(a) <= KEYPAD]
        if wrong:
            raise forms.ValidationError(
                _("Keypad entries use 0-9, * and # only: %(wrong)s.") % {"wrong": ", ".join(wrong)}
            )


class CampaignForm(forms.ModelForm):
    weekdays = WeekdaysField(
        label=_("Weekdays"),
        initial=default_weekdays,
        help_text=_("The days the campaign may call (in the calling window's zone)."),
    )

    class Meta:
        model = Campaign
        fields = ["weekdays"]  # the admin adds the others, from its fieldsets


class QuestionFieldsForm(forms.ModelForm):
    """Shows a question's settings for its kind only (campaigns/question_form.js) and clears
    the others on save, so a question switched from scale to digits keeps no stale range.
    The campaign's inline uses it as it is (its formset checks the keys as posted)."""

    valid_answers = KeypadAnswersField(
        label=_("Accepted answers"),
        required=False,
        widget=ListEditor(add_label=_("Add an answer")),
        help_text=_("Keypad entries the question accepts, one per box; none: any entry."),
    )

    class Meta:
        model = Question
        fields = ["campaign", *QUESTION_FIELDS]

    class Media:
        js = ["campaigns/question_form.js"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kind = self.fields.get("kind")
        if kind is not None:
            used = {k: list(v) for k, v in Question.KIND_FIELDS.items()}
            kind.widget.attrs["data-kind-fields"] = json.dumps(used)

    def clean(self):
        data = super().clean()
        used = Question.KIND_FIELDS.get(data.get("kind"), ())
        if "min_value" not in used:
            data["min_value"] = data["max_value"] = None
        if "valid_answers" not in used:
            data["valid_answers"] = []
        if "max_digits" not in used:
            # A yes/no answer is one key; a scale's width follows its maximum (Question.clean).
            data["max_digits"] = 1
        return data


class QuestionForm(QuestionFieldsForm):
    def _post_clean(self):
        """The campaign's keys against this question's answers, as the inline does."""
        super()._post_clean()
        if self.instance.campaign_id:
            clashes = self.instance.reserved_key_clashes(self.instance.campaign)
            for field, message in clashes.items():
                self.add_error(field, message)
