import pytest
from django.urls import reverse

from campaigns.models import Campaign
from contacts.models import Contact, Exclusion
from tests.factories import (
    AnswerFactory,
    CallEventFactory,
    CampaignFactory,
    ContactFactory,
    ExclusionFactory,
    QuestionFactory,
    ScheduledCallFactory,
)

MODELS = [
    ("campaigns", "campaign"),
    ("campaigns", "question"),
    ("contacts", "contact"),
    ("contacts", "exclusion"),
    ("calls", "callattempt"),
    ("calls", "callevent"),
    ("calls", "answer"),
    ("calls", "scheduledcall"),
    ("calls", "diallerheartbeat"),
]


@pytest.fixture
def some_of_everything():
    answer = AnswerFactory()
    CallEventFactory(attempt=answer.attempt, kind="webhook", payload={"To": "+121****142"})
    ExclusionFactory(campaign=answer.attempt.campaign)
    ScheduledCallFactory(contact=answer.attempt.contact)
    return answer


@pytest.mark.django_db
@pytest.mark.parametrize(("app", "model"), MODELS)
def test_changelist_loads_with_rows_and_searches(admin_client, some_of_everything, app, model):
    url = reverse(f"admin:{app}_{model}_changelist")
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"q": "212"}).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("app", "model", "obj"),
    [
        ("campaigns", "campaign", lambda a: a.attempt.campaign),
        ("contacts", "contact", lambda a: a.attempt.contact),
        ("calls", "callattempt", lambda a: a.attempt),
        ("calls", "answer", lambda a: a),
    ],
)
def test_change_page_loads(admin_client, some_of_everything, app, model, obj):
    target = obj(some_of_everything)
    response = admin_client.get(reverse(f"admin:{app}_{model}_change", args=[target.pk]))
    assert response.status_code == 200


@pytest.mark.django_db
def test_attempt_page_is_read_only_and_shows_its_events(admin_client, some_of_everything):
    attempt = some_of_everything.attempt
    response = admin_client.get(reverse("admin:calls_callattempt_change", args=[attempt.pk]))
    body = response.content.decode()
    assert "webhook" in body  # the event inline
    assert 'name="_save"' not in body
    assert admin_client.get(reverse("admin:calls_callattempt_add")).status_code == 403


@pytest.mark.django_db
def test_campaign_page_shows_questions_inline(admin_client):
    question = QuestionFactory(prompt="Would you fly with us again?")
    response = admin_client.get(
        reverse("admin:campaigns_campaign_change", args=[question.campaign.pk])
    )
    assert "Would you fly with us again?" in response.content.decode()


@pytest.mark.django_db
def test_changelist_shows_progress(admin_client):
    campaign = CampaignFactory()
    ContactFactory(campaign=campaign, state="completed")
    ContactFactory(campaign=campaign)
    body = admin_client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert "1 / 2" in body and "50%" in body


def post_action(client, action, *campaigns, **extra):
    return client.post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": action, "_selected_action": [c.pk for c in campaigns], **extra},
        follow=True,
    )


@pytest.mark.django_db
def test_admin_actions_walk_the_status_machine(admin_client):
    campaign = CampaignFactory()
    QuestionFactory(campaign=campaign)
    for action, status in [
        ("start_campaigns", "running"),
        ("pause_campaigns", "paused"),
        ("resume_campaigns", "running"),
        ("cancel_campaigns", "cancelled"),
    ]:
        confirmed = {"confirmed": "yes"} if action == "cancel_campaigns" else {}
        response = post_action(admin_client, action, campaign, **confirmed)
        campaign.refresh_from_db()
        assert campaign.status == status
        assert f"now {status}" in response.content.decode()


@pytest.mark.django_db
def test_admin_action_reports_illegal_moves_and_applies_legal_ones(admin_client):
    draft = CampaignFactory(name="Draft one")
    running = CampaignFactory(name="Running one", status=Campaign.Status.RUNNING)
    response = post_action(admin_client, "pause_campaigns", draft, running)
    body = response.content.decode()
    assert "Cannot pause campaign &#x27;Draft one&#x27;" in body
    draft.refresh_from_db()
    running.refresh_from_db()
    assert (draft.status, running.status) == ("draft", "paused")


def campaign_form(**changes) -> dict:
    """The admin's add-campaign form as a browser posts it, with no questions."""
    return {
        "name": "Keys",
        "timezone": "America/New_York",
        "window_policy": "contact",
        "window_start": "09:00",
        "window_end": "20:00",
        "weekdays": ["0", "1", "2"],  # ticked boxes
        "max_attempts": 3,
        "retry_busy_minutes": 1,
        "retry_no_answer_minutes": 1,
        "retry_failed_minutes": 1,
        "retry_machine_minutes": 1,
        "completion_max_attempts": 1,
        "completion_retry_minutes": 1,
        "max_concurrent_calls": 2,
        "machine_policy": "hang_up",
        "voice": "alice",
        "language": "en-US",
        "opt_out_key": "9",
        "callback_delay_minutes": 60,
        "closing_message": "Bye",
        "questions-TOTAL_FORMS": 0,
        "questions-INITIAL_FORMS": 0,
        **changes,
    }


@pytest.mark.django_db
def test_admin_refuses_a_campaign_window_outside_the_legal_window(admin_client):
    data = campaign_form(name="Night owls", window_start="07:00", window_end="22:00")
    response = admin_client.post(reverse("admin:campaigns_campaign_add"), data)
    assert response.status_code == 200
    assert "legal window" in response.content.decode()
    assert not Campaign.objects.filter(name="Night owls").exists()


@pytest.mark.django_db
def test_admin_refuses_a_question_answered_on_the_call_back_key(admin_client):
    data = campaign_form(callback_key="1")
    data.update(
        {
            "questions-TOTAL_FORMS": 1,
            "questions-0-position": 1,
            "questions-0-kind": "yes_no",
            "questions-0-prompt": "Happy? 1 yes, 2 no.",
            "questions-0-max_digits": 1,
            "questions-0-reprompt_message": "Sorry?",
            "questions-0-max_reprompts": 2,
        }
    )
    response = admin_client.post(reverse("admin:campaigns_campaign_add"), data)
    assert response.status_code == 200
    assert "call-back key, so the answer 1 could never be given" in response.content.decode()
    assert not Campaign.objects.exists()

    data["callback_key"] = "5"
    assert admin_client.post(reverse("admin:campaigns_campaign_add"), data).status_code == 302
    campaign = Campaign.objects.get()
    assert campaign.callback_key == "5" and campaign.questions.get().kind == "yes_no"


@pytest.mark.django_db
def test_admin_question_page_refuses_an_answer_on_the_opt_out_key(admin_client):
    question = QuestionFactory(kind="scale", min_value=1, max_value=5)
    url = reverse("admin:campaigns_question_change", args=[question.pk])
    data = {
        "campaign": question.campaign_id,
        "position": question.position,
        "prompt": question.prompt,
        "kind": "scale",
        "min_value": 1,
        "max_value": 10,
        "max_digits": 2,
        "reprompt_message": "Sorry?",
        "max_reprompts": 2,
    }
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "opt-out key, so the answer 9 could never be given" in response.content.decode()
    question.refresh_from_db()
    assert question.max_value == 5
    data["max_value"] = 8
    assert admin_client.post(url, data).status_code == 302
    question.refresh_from_db()
    assert question.max_value == 8


@pytest.mark.django_db
def test_admin_exclusion_excludes_the_contacts_waiting_for_a_call(admin_client):
    contact = ContactFactory(phone="+12125550101")
    response = admin_client.post(
        reverse("admin:contacts_exclusion_add"),
        {
            "phone": "(212) 555-0101",
            "reason": "asked by letter",
            "source": "manual",
            "expires_at_0": "",
            "expires_at_1": "",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "1 contact(s) waiting to be called with this number excluded." in (
        response.content.decode()
    )
    contact.refresh_from_db()
    assert contact.state == "excluded"


@pytest.mark.django_db
def test_admin_exclusion_refuses_what_is_not_a_phone_number(admin_client):
    response = admin_client.post(
        reverse("admin:contacts_exclusion_add"),
        {"phone": "garbage", "source": "manual", "expires_at_0": "", "expires_at_1": ""},
    )
    assert response.status_code == 200
    assert "is not a phone number" in response.content.decode()
    assert not Exclusion.objects.exists()


@pytest.mark.django_db
def test_admin_bulk_delete_of_exclusions_releases_their_contacts(admin_client):
    entries = [ExclusionFactory(phone=phone) for phone in ("+12125550101", "+12125550102")]
    contacts = [ContactFactory(phone=e.phone, state="excluded") for e in entries]
    response = admin_client.post(
        reverse("admin:contacts_exclusion_changelist"),
        {"action": "delete_selected", "_selected_action": [e.pk for e in entries], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Exclusion.objects.exists()
    assert {c.state for c in Contact.objects.filter(pk__in=[c.pk for c in contacts])} == {"pending"}
