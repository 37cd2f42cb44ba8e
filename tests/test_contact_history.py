"""The contact page shows its calls, answers and events as one history; the attempt list
shows outcome, duration and who answered at a glance; an attempt's page is a timeline with
its payloads folded. Times in the operator's zone with seconds, the callee's time beside."""

import datetime as dt

import pytest
from django.urls import reverse

from calls.reports.history import attempt_timeline, contact_history
from tests.factories import (
    AnswerFactory,
    CallAttemptFactory,
    CallEventFactory,
    ContactFactory,
    QuestionFactory,
    SurveyCampaignFactory,
    book,
)
from tests.staff import staff_client
from voicesurvey.accounts.timezones import set_operator_zone
from voicesurvey.times import duration_text

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 23, 17, 0, 0, tzinfo=dt.UTC)


def seconds(n):
    return T0 + dt.timedelta(seconds=n)


@pytest.fixture
def called():
    """A contact in New York called twice: no answer, then a finished survey."""
    contact = ContactFactory(phone="+12125550148", name="Ada", state="completed")
    question = QuestionFactory(
        campaign=contact.campaign, position=1, prompt="Happy?  Press 1.", kind="yes_no"
    )
    first = CallAttemptFactory(
        contact=contact,
        attempt_number=1,
        status="no_answer",
        created_at=seconds(0),
        dialled_at=seconds(1),
        ended_at=seconds(31),
    )
    second = CallAttemptFactory(
        contact=contact,
        attempt_number=2,
        status="completed",
        answered_by="human",
        survey_finished=True,
        created_at=seconds(3600),
        dialled_at=seconds(3601),
        answered_at=seconds(3608),
        ended_at=seconds(3673),
        duration=65,
    )
    CallEventFactory(
        attempt=second,
        kind="webhook",
        at=seconds(3608),
        message="answered",
        payload={"CallStatus": "in-progress", "To": "+121****148"},
    )
    AnswerFactory(attempt=second, question=question, value="yes", answered_at=seconds(3620))
    return contact, first, second


def test_history_lists_calls_answers_and_events_newest_first(called, admin_user):
    contact, first, second = called
    entries = contact_history(contact, user=admin_user)
    assert [(e.what, e.at) for e in entries] == [
        ("Answer to question 1", seconds(3620)),
        ("webhook", seconds(3608)),
        ("Call 2", seconds(3600)),
        ("Call 1", seconds(0)),
    ]
    assert entries[0].detail == "Happy? Press 1. → yes"
    assert entries[2].detail == "Completed survey, 1 min 05 s, answered by: human"
    assert entries[3].detail == "No answer"
    assert entries[1].payload == {"CallStatus": "in-progress", "To": "+121****148"}


def test_history_shows_only_what_the_user_may_read(called, django_user_model):
    contact, *_ = called
    user = django_user_model.objects.create_user("calls-only", password="pw")
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="view_callattempt"))
    user = django_user_model.objects.get(pk=user.pk)  # fresh permission cache
    assert [e.what for e in contact_history(contact, user=user)] == ["Call 2", "Call 1"]


def test_a_booked_calls_events_are_in_the_history(admin_user, now):
    contact = ContactFactory(phone="+12125550148", campaign=SurveyCampaignFactory())
    book(contact, now)
    whats = [e.what for e in contact_history(contact, user=admin_user)]
    assert whats == ["Booked call: created"]


def test_the_contact_page_shows_the_history_with_both_clocks(admin_client, admin_user, called):
    contact, first, second = called
    set_operator_zone(user=admin_user, zone="Europe/Paris")
    page = admin_client.get(reverse("admin:contacts_contact_change", args=[contact.pk]))
    body = page.content.decode()
    assert 'id="contact-history"' in body and "Times in Europe/Paris" in body
    assert "2026-11-23 19:00:08 CET" in body  # the webhook, in Paris, to the second
    assert "13:00:08 EST callee" in body  # and on the callee's clock
    assert reverse("admin:calls_callattempt_change", args=[second.pk]) in body
    assert '<details class="vs-payload">' in body and "in-progress" in body
    assert "Callee&#x27;s time now" in body or "Callee's time now" in body


def test_duration_reads_as_minutes_and_seconds():
    assert [duration_text(s) for s in (None, 0, 9, 65, 3600)] == [
        "–",
        "0 s",
        "9 s",
        "1 min 05 s",
        "1 h 00 min",
    ]


ATTEMPTS = reverse("admin:calls_callattempt_changelist")


def test_the_attempt_list_shows_outcome_duration_and_who_answered(admin_client, called):
    contact, first, second = called
    body = admin_client.get(ATTEMPTS).content.decode()
    for column in ("column-outcome_label", "column-duration_label", "column-answered_by_label"):
        assert column in body
    for dropped in ("column-attempt_number", "column-error_code", "column-status"):
        assert dropped not in body  # trimmed so the list fits 1366 px
    assert "Completed survey" in body and "1 min 05 s" in body and "Human" in body
    assert "No answer" in body
    assert "2026-11-23 18:00:00 UTC" in body and "13:00 EST" in body  # operator's, callee's


def test_the_attempt_page_is_a_timeline_with_folded_payloads(admin_client, called):
    contact, first, second = called
    response = admin_client.get(reverse("admin:calls_callattempt_change", args=[second.pk]))
    body = response.content.decode()
    assert 'id="attempt-timeline"' in body
    timeline = body[body.index('id="attempt-timeline"') :]
    order = [timeline.index(t) for t in ("Created", "Dialled", "webhook", "Answer to question")]
    assert order == sorted(order)
    for moment in ("18:00:00 UTC", "18:00:01 UTC", "18:00:08 UTC", "18:01:13 UTC"):
        assert moment in body  # created, dialled, answered, ended: to the second
    assert "13:00:08 EST" in body  # the callee's clock beside
    assert '<details class="vs-payload"><summary>Payload</summary>' in body
    assert 'name="_save"' not in body


def test_the_timeline_is_in_time_order_with_the_moments_first(called, admin_user):
    _, _, second = called
    entries = attempt_timeline(second, user=admin_user)
    assert [e.what for e in entries] == [
        "Created",
        "Dialled",
        "Answered",
        "webhook",
        "Answer to question 1",
        "Ended",
    ]


def test_the_attempt_page_hides_the_contact_from_who_may_not_read_it(
    client, django_user_model, called
):
    _, _, second = called
    viewer = staff_client(client, django_user_model, "calls.view_callattempt")
    body = viewer.get(reverse("admin:calls_callattempt_change", args=[second.pk])).content.decode()
    assert "Ada" not in body and "+12125550148" not in body
    assert f"Contact #{second.contact_id}" in body
    assert "webhook" not in body  # events need view_callevent


@pytest.mark.parametrize("model", ["contacts_contact", "calls_callattempt"])
@pytest.mark.parametrize("object_id", ["not-a-number", "999999"])
def test_a_page_for_no_such_contact_or_call_says_so(admin_client, model, object_id):
    """An id that names nothing (or is no number at all) is the admin's "does not exist"
    message, never an error page."""
    response = admin_client.get(f"/admin/{model.replace('_', '/', 1)}/{object_id}/change/")
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    follow = admin_client.get(response["Location"])
    assert "doesn’t exist" in follow.content.decode()
