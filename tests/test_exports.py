"""CSV exports: the campaign results keep whole question texts and the contacts' attributes;
the contact and attempt lists export what they show (their filters and search applied);
every cell a spreadsheet could run is escaped."""

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse

from calls.reports.results import iter_results_csv
from contacts.exporting import attribute_keys
from contacts.models import Contact
from tests.factories import (
    AnswerFactory,
    CallAttemptFactory,
    CampaignFactory,
    ContactFactory,
    QuestionFactory,
)
from tests.staff import staff_client

pytestmark = pytest.mark.django_db

ENDED = dt.datetime(2026, 11, 23, 17, 0, tzinfo=dt.UTC)
LONG = (
    "On a scale of 1 to 5, how likely are you to recommend our airline to a friend or a "
    "colleague who flies often?"
)


def rows_of(response) -> list[list[str]]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(body.decode())))


def test_results_keep_whole_question_texts_and_the_attributes():
    campaign = CampaignFactory()
    question = QuestionFactory(campaign=campaign, position=1, prompt=LONG, kind="speech")
    ada = ContactFactory(
        campaign=campaign,
        phone="+12125550101",
        name="Ada",
        attributes={"city": "Boston", "tier": "gold", "visits": 3},
    )
    ContactFactory(campaign=campaign, phone="+12125550102", attributes={"city": "=cmd()"})
    AnswerFactory(attempt__contact=ada, question=question, value="likely")
    rows = list(csv.reader(io.StringIO("".join(iter_results_csv(campaign)))))
    header = rows[0]
    assert header[-4:] == ["city", "tier", "visits", f"q1: {LONG}"]
    assert rows[1][-4:] == ["Boston", "gold", "3", "likely"]
    assert rows[2][-4:] == ["'=cmd()", "", "", ""]


def test_an_attribute_named_like_a_column_is_told_apart():
    campaign = CampaignFactory()
    ContactFactory(campaign=campaign, attributes={"name": "nick"})
    header = next(csv.reader(io.StringIO(next(iter_results_csv(campaign)))))
    assert header.count("name") == 1 and "attribute: name" in header


def test_attribute_keys_are_read_in_sql_from_the_rows_asked():
    campaign = CampaignFactory()
    ContactFactory(campaign=campaign, attributes={"b": "1", "a": "2"})
    ContactFactory(campaign=campaign, attributes={})
    ContactFactory(attributes={"elsewhere": "x"})
    assert attribute_keys(Contact.objects.filter(campaign=campaign)) == ["a", "b"]


def test_the_contact_list_exports_what_it_shows(admin_client):
    campaign = CampaignFactory(name="Spring")
    ContactFactory(campaign=campaign, phone="+12125550101", name="Ada", state="completed")
    ContactFactory(
        campaign=campaign,
        phone="+12125550102",
        name="@Bob",
        state="pending",
        attributes={"city": "Paris"},
    )
    ContactFactory(phone="+12125550103", name="Elsewhere", state="pending")
    listing = admin_client.get(
        reverse("admin:contacts_contact_changelist"),
        {"campaign__id__exact": campaign.pk, "state__exact": "pending"},
    ).content.decode()
    link = reverse("admin:contacts_contact_export")
    assert f"{link}?campaign__id__exact={campaign.pk}&amp;state__exact=pending" in listing
    response = admin_client.get(
        link, {"campaign__id__exact": campaign.pk, "state__exact": "pending"}
    )
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    rows = rows_of(response)
    assert rows[0][:4] == ["id", "campaign", "phone", "name"] and rows[0][-1] == "city"
    assert len(rows) == 2
    assert rows[1][1:4] == ["Spring", "+12125550102", "'@Bob"]
    assert rows[1][-1] == "Paris"
    searched = rows_of(admin_client.get(link, {"q": "555-0103"}))
    assert [row[3] for row in searched[1:]] == ["Elsewhere"]


def test_the_attempt_list_exports_with_its_filters(admin_client):
    done = CallAttemptFactory(
        contact__phone="+12125550101",
        contact__name="Ada",
        status="completed",
        answered_by="human",
        survey_finished=True,
        duration=42,
        ended_at=ENDED,
    )
    CallAttemptFactory(status="busy", ended_at=ENDED)
    link = reverse("admin:calls_callattempt_export")
    assert link in admin_client.get(reverse("admin:calls_callattempt_changelist")).content.decode()
    rows = rows_of(admin_client.get(link, {"outcome": "completed"}))
    assert rows[0][-2:] == ["phone", "name"]
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["outcome"], row["duration_seconds"], row["phone"], row["name"]) == (
        "completed",
        "42",
        "+12125550101",
        "Ada",
    )
    assert row["id"] == str(done.pk)


def test_the_attempt_export_leaves_contacts_out_for_who_may_not_read_them(
    client, django_user_model
):
    CallAttemptFactory(contact__name="Ada", contact__phone="+12125550101")
    viewer = staff_client(client, django_user_model, "calls.view_callattempt")
    rows = rows_of(viewer.get(reverse("admin:calls_callattempt_export")))
    assert "phone" not in rows[0] and "Ada" not in str(rows)


def test_the_contact_export_needs_the_view_permission(client, django_user_model):
    ContactFactory(name="Ada")
    outsider = staff_client(client, django_user_model, "calls.view_callattempt")
    assert outsider.get(reverse("admin:contacts_contact_export")).status_code == 403


def test_every_export_writes_times_in_iso_8601_and_guards_its_header(admin_client):
    """One way to write a cell for all three exports: a time in ISO 8601 with its offset, an
    empty one empty, and a column named by an imported file (an attribute) never a formula."""
    campaign = CampaignFactory()
    contact = ContactFactory(
        campaign=campaign, last_attempt_at=ENDED, attributes={"=HYPERLINK()": "x"}
    )
    CallAttemptFactory(contact=contact, ended_at=ENDED)
    contacts = rows_of(admin_client.get(reverse("admin:contacts_contact_export")))
    attempts = rows_of(admin_client.get(reverse("admin:calls_callattempt_export")))
    results = list(csv.reader(io.StringIO("".join(iter_results_csv(campaign)))))
    for rows in (contacts, attempts, results):
        row = dict(zip(rows[0], rows[1], strict=True))
        assert (row.get("last_attempt_at") or row["ended_at"]) == "2026-11-23T17:00:00+00:00"
    assert dict(zip(*attempts[:2], strict=True))["answered_at"] == ""
    assert "'=HYPERLINK()" in contacts[0] and "'=HYPERLINK()" in results[0]
