"""Autocomplete fields that survive a posted value that is not an id.

Django's AutocompleteSelect looks the posted value up to show it again beside the form's
"Select a valid choice" error; a value such as "abc" makes that lookup raise, and the page is
a 500 instead of the error. Here such a value is shown as nothing chosen."""

from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError


class CheckedAutocompleteSelect(AutocompleteSelect):
    def optgroups(self, name, value, attr=None):
        return super().optgroups(name, [v for v in value if self._is_key(v)], attr)

    def _is_key(self, value) -> bool:
        if value in (None, ""):
            return False
        key = self.field.target_field
        try:
            key.run_validators(key.to_python(value))  # the column's range too
        except ValidationError:
            return False
        return True


class CheckedAutocompleteMixin:
    """For a ModelAdmin with `autocomplete_fields`: those fields use the checked widget."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = CheckedAutocompleteSelect(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
