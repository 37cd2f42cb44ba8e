import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType

from contacts.numbering import read_number
from contacts.phones import InvalidPhone, mask_phone, normalise_phone, timezones_for


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(212) 555-0142", "US", "+12125550142"),
        ("212.555.0142", "US", "+12125550142"),
        ("+1 212 555 0142", None, "+12125550142"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+33 6 12 34 56 78", "US", "+33612345678"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("  0044 20 7946 0018 ", "FR", "+442079460018"),
    ],
)
def test_national_and_international_formats_become_e164(raw, region, expected):
    assert normalise_phone(raw, region) == expected


def test_default_region_comes_from_settings(settings):
    settings.DEFAULT_REGION = "FR"
    assert normalise_phone("06 12 34 56 78") == "+33612345678"


@pytest.mark.parametrize("raw", ["", "   ", "hello", "++--", "12", "phone: none"])
def test_garbage_is_rejected(raw):
    with pytest.raises(InvalidPhone):
        normalise_phone(raw, "US")


@pytest.mark.parametrize("raw", ["+1 212 555 01", "+1 000 555 0142", "+33 1", "+999 1234567"])
def test_numbers_that_parse_but_cannot_exist_are_rejected(raw):
    with pytest.raises(InvalidPhone, match="not"):
        normalise_phone(raw, "US")


@given(st.text(max_size=30))
def test_normalise_never_crashes_on_any_text(text):
    try:
        result = normalise_phone(text, "US")
    except InvalidPhone:
        return
    assert result.startswith("+") and result[1:].isdigit()


@pytest.mark.parametrize(
    ("phone", "zones"),
    [
        ("+12125550142", ["America/New_York"]),
        ("+17025550142", ["America/Los_Angeles"]),
        ("+33612345678", ["Europe/Paris"]),
    ],
)
def test_time_zone_is_derived_from_the_number(phone, zones):
    assert timezones_for(phone) == zones


def test_toll_free_number_maps_to_several_zones():
    zones = timezones_for("+18005550142")
    assert "America/New_York" in zones and "America/Los_Angeles" in zones
    assert zones == sorted(zones)


def test_unknown_zone_gives_empty_list():
    assert timezones_for("+882123456789") == []


def test_mask_keeps_only_prefix_and_last_digits():
    assert mask_phone("+33612345678") == "+336*****678"
    assert "12345" not in mask_phone("+33612345678")


# --- contacts.numbering (the import's fast reader) agrees with phonenumbers ---------------------

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
NUMBER_TYPES = [t for n, t in vars(PhoneNumberType).items() if n.isupper() and t != 0] + [0]
EXAMPLES = [
    (region, example)
    for region in REGIONS
    for kind in NUMBER_TYPES
    if (example := phonenumbers.example_number_for_type(region, kind)) is not None
] + [
    ("001", phonenumbers.example_number_for_non_geo_entity(code))
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)
]


def libphonenumber_answer(raw: str, region: str):
    try:
        phone = normalise_phone(raw, region)
    except InvalidPhone:
        return None
    return phone, timezones_for(phone)


def test_fast_reader_gives_libphonenumbers_answer_for_every_example_number():
    answered = 0
    for region, example in EXAMPLES:
        for style in (PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL):
            raw = phonenumbers.format_number(example, style)
            for default_region in {"US", "FR", region if region != "001" else "GB"}:
                fast = read_number(raw, default_region)
                if fast is not None:
                    answered += 1
                    assert fast == libphonenumber_answer(raw, default_region), raw
        national = phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL)
        if region != "001":
            fast = read_number(national, region)
            assert fast is None or fast == libphonenumber_answer(national, region), national
    # It reads most plain numbers itself (else the import would be slow, and this test empty).
    assert answered > 0.7 * len(EXAMPLES) * 6


def written(example, edits, length_change, style, separator):
    """The text of a number near `example`: some digits changed, a little shorter or longer,
    written in one of the ways people write numbers."""
    digits = list(str(example.national_number))
    for position, digit in edits:
        digits[position % len(digits)] = str(digit)
    nsn = "".join(digits)
    nsn = nsn[:length_change] if length_change < 0 else nsn + "5" * length_change
    if example.italian_leading_zero:
        nsn = "0" * (example.number_of_leading_zeros or 1) + nsn
    code = str(example.country_code)
    region = phonenumbers.region_code_for_country_code(example.country_code)
    metadata = PhoneMetadata.metadata_for_region(region, None)
    prefix = metadata.national_prefix if metadata else None
    grouped = separator.join([nsn[:3], nsn[3:6], nsn[6:]]).strip(separator)
    return {
        "e164": f"+{code}{nsn}",
        "international": f"+{code}{separator}{grouped}",
        "brackets": f"+{code} ({nsn[:3]}) {nsn[3:6]}-{nsn[6:]}",
        "national": nsn,
        "national grouped": grouped,
        "national brackets": f"({nsn[:3]}) {nsn[3:6]}-{nsn[6:]}",
        "trunk prefix": f"{prefix or ''}{grouped}",
        "trunk prefix after code": f"+{code} {prefix or '0'}{nsn}",
        "country code without plus": f"{code}{nsn}",
        "international prefix": f"00{code}{nsn}",
        "international prefix US": f"011{code}{nsn}",
    }[style]


@settings(max_examples=3000, deadline=None)
@given(
    example=st.sampled_from(EXAMPLES),
    edits=st.lists(st.tuples(st.integers(0, 20), st.integers(0, 9)), max_size=3),
    length_change=st.integers(-3, 2),
    style=st.sampled_from(
        [
            "e164",
            "international",
            "brackets",
            "national",
            "national grouped",
            "national brackets",
            "trunk prefix",
            "trunk prefix after code",
            "country code without plus",
            "international prefix",
            "international prefix US",
        ]
    ),
    separator=st.sampled_from([" ", "-", ".", "\u00a0", ""]),
    default_region=st.sampled_from(["US", "CA", "FR", "GB", "DE", "IT", "RU", "BR", "IN", "AU"]),
    own_region=st.booleans(),
)
def test_fast_reader_never_disagrees_with_libphonenumber(
    example, edits, length_change, style, separator, default_region, own_region
):
    region, number = example
    if own_region and region != "001":
        default_region = region
    raw = written(number, edits, length_change, style, separator)
    fast = read_number(raw, default_region)
    assert fast is None or fast == libphonenumber_answer(raw, default_region)
