import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calls.models import CallAttempt
from calls.reports.results import iter_results_csv
from calls.reports.stats import campaign_stats
from contacts.models import Contact
from tests.factories import (
    AnswerFactory,
    CallAttemptFactory,
    CallEventFactory,
    CampaignFactory,
    ContactFactory,
    QuestionFactory,
)
from tests.test_api_campaigns import assert_error

pytestmark = pytest.mark.django_db

ATTEMPTS = "/api/v1/attempts/"
ANSWERS = "/api/v1/answers/"


def finished(contact, number, status, now, **extra):
    return CallAttemptFactory(
        contact=contact,
        attempt_number=number,
        status=status,
        created_at=now,
        dialled_at=now,
        ended_at=now + dt.timedelta(minutes=1),
        **extra,
    )


# --- attempts and answers ---------------------------------------------------------------------


def test_attempts_filtered_by_campaign_contact_status_and_date(api_client, now):
    contact = ContactFactory()
    old = finished(contact, 1, "busy", now - dt.timedelta(days=2))
    new = finished(contact, 2, "completed", now, answered_by="human", survey_finished=True)
    finished(ContactFactory(), 1, "no_answer", now)
    by_campaign = api_client.get(ATTEMPTS, {"campaign": contact.campaign_id}).json()
    assert {a["id"] for a in by_campaign["results"]} == {str(old.pk), str(new.pk)}
    recent = api_client.get(
        ATTEMPTS,
        {"contact": contact.pk, "created_after": (now - dt.timedelta(days=1)).isoformat()},
    ).json()
    assert [a["id"] for a in recent["results"]] == [str(new.pk)]
    assert recent["results"][0]["outcome"] == "completed"
    busy = api_client.get(ATTEMPTS, {"status": ["busy", "no_answer"]}).json()
    assert busy["count"] == 2


def test_attempt_detail_has_its_events(api_client):
    event = CallEventFactory(kind="webhook", message="ringing")
    body = api_client.get(f"{ATTEMPTS}{event.attempt_id}/").json()
    assert [e["kind"] for e in body["events"]] == ["webhook"]


def test_attempts_are_read_only(api_client, viewer_client):
    attempt = CallAttemptFactory()
    assert_error(api_client.post(ATTEMPTS, {}), 405, "method_not_allowed")
    assert_error(api_client.delete(f"{ATTEMPTS}{attempt.pk}/"), 405)
    assert viewer_client.get(f"{ATTEMPTS}{attempt.pk}/").status_code == 200


@pytest.mark.parametrize("pk", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_unknown_attempt_is_a_404(api_client, pk):
    assert_error(api_client.get(f"{ATTEMPTS}{pk}/"), 404, "not_found")


def test_bad_attempt_filters_are_400(api_client):
    assert_error(api_client.get(ATTEMPTS, {"created_after": "2026-13-45"}), 400, "invalid")
    assert_error(api_client.get(ATTEMPTS, {"status": "exploded"}), 400, "invalid")
    assert_error(api_client.get(ATTEMPTS, {"contact": "abc"}), 400, "invalid")


def test_answers_filtered_by_campaign_and_contact(api_client, anon_client):
    answer = AnswerFactory(value="yes")
    AnswerFactory()
    body = api_client.get(ANSWERS, {"campaign": answer.attempt.campaign_id}).json()
    assert [(a["id"], a["value"], a["contact"]) for a in body["results"]] == [
        (answer.pk, "yes", answer.attempt.contact_id)
    ]
    assert api_client.get(ANSWERS, {"contact": answer.attempt.contact_id}).json()["count"] == 1
    assert_error(api_client.get(f"{ANSWERS}{answer.pk + 100}/"), 404)
    assert_error(anon_client.get(ANSWERS), 401)


# --- stats ------------------------------------------------------------------------------------


def test_campaign_stats(api_client, now):
    campaign = CampaignFactory()
    done = ContactFactory(campaign=campaign, state=Contact.State.COMPLETED)
    busy = ContactFactory(campaign=campaign, state=Contact.State.NOT_REACHED)
    ContactFactory(campaign=campaign, state=Contact.State.EXCLUDED)
    ContactFactory(campaign=campaign, state=Contact.State.EXHAUSTED)
    finished(done, 1, "completed", now, answered_by="human", survey_finished=True, duration=90)
    finished(busy, 1, "busy", now)
    finished(busy, 2, "completed", now, answered_by="machine", duration=30)
    CallAttemptFactory(
        contact=busy,
        attempt_number=3,
        status="failed",
        ended_at=now,
        error_code="provider_unavailable",
    )  # never reached the provider
    ContactFactory(state=Contact.State.COMPLETED)  # another campaign

    with CaptureQueriesContext(connection) as queries:
        stats = campaign_stats(campaign.pk)
    assert len(queries) <= 3
    assert stats["contacts"]["total"] == 4
    assert (stats["contacts"]["completed"], stats["contacts"]["pending"]) == (1, 1)
    assert (stats["contacts"]["failed"], stats["contacts"]["excluded"]) == (1, 1)
    assert stats["attempts"]["total"] == 4
    assert stats["attempts"]["reached_provider"] == 3
    assert stats["attempts"]["answered"] == 1  # the machine is not a person
    assert stats["attempts"]["by_outcome"]["machine"] == 1
    assert stats["attempts"]["by_outcome"]["provider_unavailable"] == 1
    assert stats["attempts"]["by_status"]["busy"] == 1
    assert stats["answer_rate"] == round(1 / 3, 4)
    assert stats["completion_rate"] == round(1 / 3, 4)  # 1 completed of 3 callable
    assert stats["talk_time"] == {"total_seconds": 120, "average_seconds": 60.0}

    response = api_client.get(f"/api/v1/campaigns/{campaign.pk}/stats/")
    assert response.json() == stats
    everything = api_client.get("/api/v1/stats/").json()
    assert everything["contacts"]["total"] == 5 and everything["campaign_id"] is None


def test_stats_of_an_empty_campaign_have_no_rates(api_client):
    stats = api_client.get(f"/api/v1/campaigns/{CampaignFactory().pk}/stats/").json()
    assert stats["answer_rate"] is None and stats["completion_rate"] is None
    assert stats["talk_time"] == {"total_seconds": 0, "average_seconds": None}


def test_stats_permissions(viewer_client, anon_client, django_user_model):
    from rest_framework.test import APIClient

    assert viewer_client.get("/api/v1/stats/").status_code == 200
    assert_error(anon_client.get("/api/v1/stats/"), 401)
    nobody = APIClient()
    nobody.force_authenticate(django_user_model.objects.create_user("nobody"))
    assert_error(nobody.get("/api/v1/stats/"), 403)
    assert_error(nobody.get(f"/api/v1/campaigns/{CampaignFactory().pk}/stats/"), 403)


# --- results export ---------------------------------------------------------------------------


def test_results_csv_has_one_row_per_contact_with_latest_answers(api_client, now):
    campaign = CampaignFactory()
    q1 = QuestionFactory(campaign=campaign, position=1, prompt="Happy?")
    q2 = QuestionFactory(campaign=campaign, position=2, prompt="Again?")
    ann = ContactFactory(
        campaign=campaign,
        phone="+12125550101",
        name="Ann",
        external_id="A1",
        state=Contact.State.COMPLETED,
        attempts_count=2,
        last_attempt_number=2,
        last_attempt_at=now,
    )
    first = finished(ann, 1, "completed", now - dt.timedelta(hours=1), answered_by="human")
    second = finished(ann, 2, "completed", now, answered_by="human", survey_finished=True)
    AnswerFactory(attempt=first, question=q1, value="no", answered_at=now - dt.timedelta(hours=1))
    AnswerFactory(attempt=second, question=q1, value="yes", answered_at=now)
    AnswerFactory(attempt=second, question=q2, value="no", answered_at=now)
    ContactFactory(campaign=campaign, phone="+12125550102", name="Bob, Jr.")

    response = api_client.get(f"/api/v1/campaigns/{campaign.pk}/results.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "phone",
        "name",
        "external_id",
        "state",
        "attempts_count",
        "last_attempt_at",
        "last_outcome",
        "q1: Happy?",
        "q2: Again?",
    ]
    assert rows[1] == [
        "+12125550101",
        "Ann",
        "A1",
        "completed",
        "2",
        now.isoformat(),
        "completed",
        "yes",
        "no",
    ]
    assert rows[2] == ["+12125550102", "Bob, Jr.", "", "pending", "0", "", "", "", ""]
    assert len(rows) == 3


def test_results_csv_escapes_cells_a_spreadsheet_would_run_as_formulas(api_client, now):
    campaign = CampaignFactory()
    question = QuestionFactory(campaign=campaign, position=1)
    contact = ContactFactory(
        campaign=campaign,
        phone="+12125550101",
        name='=HYPERLINK("http://evil.example","click")',
        external_id="@SUM(A1)",
    )
    attempt = finished(contact, 1, "completed", now, answered_by="human", survey_finished=True)
    AnswerFactory(attempt=attempt, question=question, value="-2+3", answered_at=now)

    response = api_client.get(f"/api/v1/campaigns/{campaign.pk}/results.csv")
    _, row = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert row[:3] == ["+12125550101", '\'=HYPERLINK("http://evil.example","click")', "'@SUM(A1)"]
    assert row[-1] == "'-2+3"


def test_results_export_reads_contacts_in_chunks_with_bounded_queries(monkeypatch):
    from calls.reports import results

    monkeypatch.setattr(results, "CHUNK_SIZE", 10)
    campaign = CampaignFactory()
    QuestionFactory(campaign=campaign)
    Contact.objects.bulk_create(
        [
            Contact(campaign=campaign, phone=f"+1212555{n:04d}", timezone_key="UTC")
            for n in range(100, 145)
        ]
    )
    with CaptureQueriesContext(connection) as queries:
        chunks = list(iter_results_csv(campaign))
    assert sum(chunk.count("\n") for chunk in chunks) == 46  # header + 45 contacts
    assert len(chunks) == 1 + 5  # header, then one piece per chunk of 10
    # questions + contacts (+ a cursor's fetches on PostgreSQL) + one answers query per chunk
    assert len(queries) <= 2 + 5 + 5 + 2


def test_results_permissions_and_not_found(viewer_client, anon_client, api_client):
    campaign = CampaignFactory()
    assert viewer_client.get(f"/api/v1/campaigns/{campaign.pk}/results.csv").status_code == 200
    assert_error(anon_client.get(f"/api/v1/campaigns/{campaign.pk}/results.csv"), 401)
    assert_error(api_client.get("/api/v1/campaigns/4242/results.csv"), 404)


def test_attempt_outcome_in_sql_matches_the_model(now):
    """calls.reports.stats counts outcomes in SQL; it must agree with CallAttempt.outcome."""
    from calls.reports.stats import outcome_expression

    contact = ContactFactory()
    cases = [
        {"status": "completed", "answered_by": "human", "survey_finished": True},
        {"status": "completed", "answered_by": "human"},
        {"status": "completed", "answered_by": "machine"},
        {"status": "busy"},
        {"status": "no_answer"},
        {"status": "failed"},
        {"status": "canceled"},
        {"status": "failed", "error_code": "number_rejected"},
        {"status": "failed", "error_code": "provider_unavailable"},
        {"status": "failed", "error_code": "lost"},
        {"status": "completed", "opted_out": True},
        {"status": "completed", "callback_requested_for": now},
    ]
    for n, fields in enumerate(cases, start=1):
        finished(contact, n, now=now, **fields)
    for attempt in CallAttempt.objects.annotate(sql_outcome=outcome_expression()):
        assert attempt.sql_outcome == attempt.outcome, attempt
