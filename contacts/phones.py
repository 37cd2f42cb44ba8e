"""Phone numbers: normalise to E.164 and derive the callee's time zones (libphonenumber)."""

import re

import phonenumbers
from django.conf import settings
from django.db.models import Q
from django.utils.translation import gettext as _
from phonenumbers import timezone as phone_timezone


class InvalidPhone(ValueError):
    """The text is not a valid, callable phone number."""


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """Return the number in E.164 (+14155550123).

    National formats ("(415) 555-0123") are read in `default_region` (settings.DEFAULT_REGION
    when not given). Garbage, and numbers that parse but cannot exist, raise InvalidPhone."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone(_("The phone number is empty."))
    region = (default_region or settings.DEFAULT_REGION or "").upper() or None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(
            _("%(number)s is not a phone number (%(reason)s).")
            % {"number": mask_phone(text), "reason": exc._msg}
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(
            _("%(number)s is not a valid phone number.") % {"number": mask_phone(text)}
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# A search term that is a phone number as people write one: digits, spaces, dots, dashes,
# slashes, parentheses, a leading +.
PHONE_TERM = re.compile(r"\+?[\d\s().\-/]+")
MIN_SEARCH_DIGITS = 4


def phone_search(term: str, field: str = "phone", region: str | None = None) -> Q | None:
    """The filter that finds stored E.164 numbers from a number typed in any format, or None
    when `term` is not a number: "555-0148", "(212) 555-0148" and "+1 212 555 0148" all end
    the stored "+12125550148", so its digits are matched as a suffix; a full national number
    with a trunk 0 ("020 7946 0018" in GB) is also read in `region` and matched exactly."""
    text = (term or "").strip()
    if not PHONE_TERM.fullmatch(text):
        return None
    digits = re.sub(r"\D", "", text)
    if len(digits) < MIN_SEARCH_DIGITS:
        return None
    found = Q(**{f"{field}__endswith": digits})
    try:
        found |= Q(**{field: normalise_phone(text, region)})
    except InvalidPhone:
        pass
    return found


def timezones_for(e164: str) -> list[str]:
    """The IANA zones libphonenumber gives for a number, sorted; empty when it knows none.

    One number may map to several zones (a US toll-free number maps to every US zone); the
    dialler calls such a number only when the window is open in all of them."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return []
    zones = phone_timezone.time_zones_for_number(number)
    return sorted(z for z in zones if z != phone_timezone.UNKNOWN_TIMEZONE)


def mask_phone(phone: str) -> str:
    """+33612345678 -> +336*****678: enough for an operator to recognise, not to dial."""
    text = str(phone or "")
    if len(text) <= 6:
        return "*" * len(text)
    return text[:4] + "*" * (len(text) - 7) + text[-3:]


# What looks like a phone number inside free text: an international number written with "+"
# (or "%2B", URL-encoded in a query string), or a bare run of 9 to 15 digits. Dates, ids and
# durations are shorter or carry separators; a bare digit run this long is masked in doubt.
PHONE_IN_TEXT = re.compile(r"(?:\+|%2[Bb])\d{6,15}(?!\d)|(?<![\w.-])\d{9,15}(?![\w.])")


def mask_phones_in(text: str) -> str:
    """Mask every phone-looking number inside `text` (log lines, provider error messages)."""
    return PHONE_IN_TEXT.sub(lambda m: _mask_match(m.group(0)), text)


def _mask_match(found: str) -> str:
    if found[:3].upper() == "%2B":
        return "%2B" + mask_phone("+" + found[3:])[1:]
    return mask_phone(found)
