import pytest
from hypothesis import given
from hypothesis import strategies as st

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
