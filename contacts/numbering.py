"""libphonenumber's answers for the common, plain numbers of an import, several times faster.

`read_number(raw, region)` gives the (E.164, zones) that contacts.phones.normalise_phone and
timezones_for give, or None when the text is not a plain number that it can read exactly as
phonenumbers would: the caller then asks phonenumbers itself. It only ever says "valid": an
invalid or unusual number is always left to phonenumbers (and to its error message).

Where the time went in phonenumbers: typing a number (valid or not, fixed line, mobile...)
matches it against up to eleven patterns of its region, one compiled-pattern lookup and one
regex call each. Here the patterns that apply to a number of a given length are joined, once,
into one regex whose alternatives come in phonenumbers' order, so the first alternative that
matches the whole number is the type `_number_type_helper` would find:

    (?=GENERAL\\Z)(?:(?P<t4>PREMIUM)|(?P<t3>TOLL_FREE)|...|(?P<t2>FIXED_AND_MOBILE)|(?P<t0>FIXED)|...)

Lengths stand in for each pattern's `possible_length` check (a pattern is left out of the
regex for a length it does not allow). A test compares the answers with phonenumbers' on
random numbers of every region."""

from __future__ import annotations

import re

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, PhoneNumber
from phonenumbers import PhoneNumberType as T
from phonenumbers import timezone as phone_timezone
from phonenumbers.phonenumberutil import (
    _MAX_INPUT_STRING_LENGTH,
    is_number_type_geographical,
    region_code_for_country_code,
)

# The descriptions _number_type_helper tries before fixed line and mobile, in its order.
_TYPES_BEFORE_FIXED_LINE = (
    ("premium_rate", T.PREMIUM_RATE),
    ("toll_free", T.TOLL_FREE),
    ("shared_cost", T.SHARED_COST),
    ("voip", T.VOIP),
    ("personal_number", T.PERSONAL_NUMBER),
    ("pager", T.PAGER),
    ("uan", T.UAN),
    ("voicemail", T.VOICEMAIL),
)
_SEPARATORS = str.maketrans("", "", " -.()\u00a0")
_PLAIN_E164 = re.compile(r"\+[1-9]\d{6,14}")
_MIN_NSN, _MAX_NSN = 2, 17  # phonenumbers' _MIN_LENGTH_FOR_NSN, _MAX_LENGTH_FOR_NSN


def _applies(desc, length: int) -> bool:
    """Whether _is_number_matching_desc would try desc's pattern on a number of this length."""
    if desc is None or not desc.national_number_pattern:
        return False
    return not desc.possible_length or length in desc.possible_length


class _Region:
    """One region's type patterns, one regex per national number length (built when first
    needed), plus what its parser needs to know."""

    def __init__(self, metadata):
        self.metadata = metadata
        self.country_code = metadata.country_code
        self.leading_digits = metadata.leading_digits and re.compile(metadata.leading_digits)
        prefix = metadata.national_prefix_for_parsing
        self.national_prefix = re.compile(prefix) if prefix else None
        idd = metadata.international_prefix
        self.international_prefix = re.compile(idd) if idd else None
        self._by_length: dict[int, tuple[re.Pattern, dict[str, int]] | None] = {}

    def number_type(self, national: str) -> int:
        """phonenumbers' _number_type_helper(national, metadata)."""
        length = len(national)
        if length not in self._by_length:
            self._by_length[length] = self._compile(length)
        compiled = self._by_length[length]
        if compiled is None:
            return T.UNKNOWN
        pattern, types = compiled
        match = pattern.fullmatch(national)
        return T.UNKNOWN if match is None else types[match.lastgroup]

    def _compile(self, length: int):
        md = self.metadata
        if not _applies(md.general_desc, length):
            return None
        alternatives: list[tuple[str, int]] = []
        for name, kind in _TYPES_BEFORE_FIXED_LINE:
            if _applies(getattr(md, name), length):
                alternatives.append((getattr(md, name).national_number_pattern, kind))
        fixed = md.fixed_line.national_number_pattern if _applies(md.fixed_line, length) else None
        mobile = md.mobile.national_number_pattern if _applies(md.mobile, length) else None
        if fixed and md.same_mobile_and_fixed_line_pattern:
            alternatives.append((fixed, T.FIXED_LINE_OR_MOBILE))
        elif fixed:
            if mobile:  # both patterns match the whole number
                alternatives.append((f"(?=(?:{fixed})\\Z)(?:{mobile})", T.FIXED_LINE_OR_MOBILE))
            alternatives.append((fixed, T.FIXED_LINE))
        if mobile and not md.same_mobile_and_fixed_line_pattern:
            alternatives.append((mobile, T.MOBILE))
        if not alternatives:
            return None
        # match.lastgroup names the alternative that matched: it is the last group to close.
        types = {f"t{n}": kind for n, (_, kind) in enumerate(alternatives)}
        joined = "|".join(f"(?P<t{n}>{p})" for n, (p, _) in enumerate(alternatives))
        general = md.general_desc.national_number_pattern
        return re.compile(f"(?=(?:{general})\\Z)(?:{joined})"), types


class _Country:
    """A country calling code: its regions in phonenumbers' order (+1 has 25)."""

    def __init__(self, code: int):
        self.code = code
        self.text = str(code)
        regions = COUNTRY_CODE_TO_REGION_CODE[code]
        self.regions = [
            _Region(md)
            for md in (PhoneMetadata.metadata_for_region_or_calling_code(code, r) for r in regions)
            if md is not None
        ]
        self.single = len(regions) == 1
        main = PhoneMetadata.metadata_for_region_or_calling_code(
            code, region_code_for_country_code(code)
        )
        self.main = _Region(main) if main is not None else None
        self.country_zones = _zones(
            phone_timezone._country_level_time_zones_for_number(PhoneNumber(country_code=code))
        )
        # The lengths of the zone prefixes that can start one of this country's numbers,
        # longest first: the only ones worth looking up (+1 has 4 and 7 digit prefixes, not 9).
        self.zone_prefix_lengths = sorted(
            {
                len(prefix)
                for prefix in phone_timezone.TIMEZONE_DATA
                if (prefix.startswith(self.text) or self.text.startswith(prefix))
                and len(prefix) <= phone_timezone.TIMEZONE_LONGEST_PREFIX
            },
            reverse=True,
        )

    def number_type(self, national: str) -> int:
        """phonenumbers.number_type() of +<code><national>: the region is found as
        region_code_for_number() finds it, then the number is typed in it."""
        if self.single:
            return self.regions[0].number_type(national) if self.regions else T.UNKNOWN
        for region in self.regions:
            if region.leading_digits:
                if region.leading_digits.match(national):
                    return region.number_type(national)
            else:
                kind = region.number_type(national)
                if kind != T.UNKNOWN:
                    return kind
        return T.UNKNOWN


_countries: dict[int, _Country] = {}
_regions: dict[str, _Region] = {}
_zone_lists: dict[tuple, list[str]] = {}


def _country(code: int) -> _Country | None:
    if code not in _countries:
        if code not in COUNTRY_CODE_TO_REGION_CODE:
            return None
        _countries[code] = _Country(code)
    return _countries[code]


def _region(region: str) -> _Region | None:
    if region not in _regions:
        md = PhoneMetadata.metadata_for_region(region, None)
        _regions[region] = _Region(md) if md is not None else None
    return _regions[region]


def _zones(found: tuple) -> list[str]:
    """phonenumbers' zone tuple as timezones_for gives it: sorted, without "Etc/Unknown".
    Shared between numbers (read only)."""
    if found not in _zone_lists:
        _zone_lists[found] = sorted(z for z in found if z != phone_timezone.UNKNOWN_TIMEZONE)
    return _zone_lists[found]


def _geographical_zones(country: _Country, e164: str) -> list[str]:
    """time_zones_for_geographical_number(): the zones of the longest prefix of the E.164
    text (without its +) that libphonenumber's zone data knows."""
    data = phone_timezone.TIMEZONE_DATA
    for length in country.zone_prefix_lengths:
        found = data.get(e164[1 : 1 + length])
        if found is not None:
            return _zones(found)
    return []


def read_number(raw: str, region: str | None) -> tuple[str, list[str]] | None:
    """(E.164, zones) of a valid number written plainly ("+1 212-555-0123", "(212) 555 0123"
    read in `region`, which must be an upper-case supported region); None when phonenumbers
    must decide (anything else, and every invalid number). The zones list is shared: do not
    change it."""
    if not raw or len(raw) > _MAX_INPUT_STRING_LENGTH:
        return None
    digits = raw.translate(_SEPARATORS)
    if raw[0] == "+":
        if not _PLAIN_E164.fullmatch(digits):
            return None
        for length in (1, 2, 3):  # country codes are prefix-free
            country = _country(int(digits[1 : 1 + length]))
            if country is not None:
                break
        else:
            return None
        national = digits[1 + length :]
        # parse() would strip a national prefix after the country code if it can, and keeps
        # a leading zero apart (Italy): leave both to it.
        main = country.main
        if main is None or (main.national_prefix and main.national_prefix.match(national)):
            return None
    else:
        if region is None or not (digits.isascii() and digits.isdigit()) or len(digits) < 3:
            return None
        home = _region(region)
        if home is None:
            return None
        # parse() reads an international prefix (011...), the country code, or a national
        # prefix at the start of a national number: leave those to it.
        if home.international_prefix and home.international_prefix.match(digits):
            return None
        if home.national_prefix and home.national_prefix.match(digits):
            return None
        country = _country(home.country_code)
        if country is None or digits.startswith(country.text):
            return None
        national = digits
    if not _MIN_NSN <= len(national) <= _MAX_NSN or national[0] == "0":
        return None
    kind = country.number_type(national)
    if kind == T.UNKNOWN:
        return None
    e164 = f"+{country.text}{national}"
    if is_number_type_geographical(kind, country.code):
        return e164, _geographical_zones(country, e164)
    return e164, country.country_zones
