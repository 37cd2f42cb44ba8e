import pytest
from django.urls import reverse
from django.utils import timezone

from calls.reports.dashboard import TOP_ANSWERS, question_results
from tests.factories import (
    AnswerFactory,
    CallAttemptFactory,
    CampaignFactory,
    ContactFactory,
    QuestionFactory,
)


def answer(question, value, **attempt_fields):
    attempt = CallAttemptFactory(contact=ContactFactory(campaign=question.campaign))
    return AnswerFactory(attempt=attempt, question=question, value=value)


@pytest.fixture
def surveyed():
    """A campaign with a yes/no, a 1-5 scale and a speech question, and some answers."""
    campaign = CampaignFactory(name="Airline")
    yes_no = QuestionFactory(campaign=campaign, position=1, kind="yes_no", prompt="Fly again?")
    scale = QuestionFactory(
        campaign=campaign, position=2, kind="scale", min_value=1, max_value=5, prompt="Rate us"
    )
    speech = QuestionFactory(campaign=campaign, position=3, kind="speech", prompt="Why?")
    for value in ["yes", "yes", "no"]:
        answer(yes_no, value)
    for value in ["5", "5", "4", "1"]:
        answer(scale, value)
    for i in range(TOP_ANSWERS + 5):  # more distinct spoken answers than the chart shows
        for _ in range(1 + (i == 3) * 4):
            answer(speech, f"reason {i}")
    return campaign


@pytest.mark.django_db
def test_answer_distribution_per_question(surveyed, django_assert_num_queries):
    with django_assert_num_queries(2):
        yes_no, scale, speech = question_results(surveyed)
    assert yes_no.answers == [("yes", 2), ("no", 1)] and yes_no.total == 3
    # every point of the scale gets its bar, zeros included, in order
    assert scale.answers == [("1", 1), ("2", 0), ("3", 0), ("4", 1), ("5", 2)]
    assert len(speech.answers) == TOP_ANSWERS and speech.truncated
    assert speech.answers[0] == ("reason 3", 5)  # the most frequent first
    assert speech.total == TOP_ANSWERS + 5 + 4


@pytest.mark.django_db
def test_results_page_draws_one_chart_per_question(admin_client, surveyed):
    response = admin_client.get(reverse("admin:campaigns_campaign_results", args=[surveyed.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert body.count('class="module vs-panel question-result"') == 3
    assert 'data-value="2"><title>yes: 2</title>' in body
    assert "reason 3: 5" in body
    assert "Spoken answer" in body  # the kind of each question
    assert reverse("admin:campaigns_campaign_results_csv", args=[surveyed.pk]) in body


@pytest.mark.django_db
def test_results_page_of_a_campaign_with_no_answers(admin_client):
    question = QuestionFactory(prompt="Anything?")
    url = reverse("admin:campaigns_campaign_results", args=[question.campaign.pk])
    body = admin_client.get(url).content.decode()
    assert "Anything?" in body and "0 answers" in body


@pytest.mark.django_db
def test_campaign_page_links_to_preview_results_csv_and_import(admin_client):
    campaign = CampaignFactory()
    body = admin_client.get(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    ).content.decode()
    for name in ("preview", "results", "results_csv"):
        assert reverse(f"admin:campaigns_campaign_{name}", args=[campaign.pk]) in body
    assert f"{reverse('admin:contacts_contact_import')}?campaign={campaign.pk}" in body


@pytest.mark.django_db
def test_results_csv_download(admin_client, surveyed):
    response = admin_client.get(reverse("admin:campaigns_campaign_results_csv", args=[surveyed.pk]))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert f"campaign-{surveyed.pk}-results.csv" in response["Content-Disposition"]
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("phone,name") and "q1: Fly again?" in lines[0]
    assert len(lines) == 1 + surveyed.contacts.count()


@pytest.mark.django_db
def test_survey_preview_for_the_first_and_for_a_chosen_contact(admin_client):
    campaign = CampaignFactory(intro_message="Hello {name|there}, this is Acme.")
    QuestionFactory(campaign=campaign, position=1, prompt="Did {name|you} like it?")
    QuestionFactory(campaign=campaign, position=2, prompt="Would you come back?")
    ContactFactory(campaign=campaign, name="Ada", phone="+12125550150")
    ContactFactory(campaign=campaign, name="Bob", phone="+12125550151")
    url = reverse("admin:campaigns_campaign_preview", args=[campaign.pk])

    first = admin_client.get(url).context
    assert first["spoken"][:3] == [
        "Hello Ada, this is Acme.",
        "Did Ada like it?",
        "Would you come back?",
    ]
    assert "<Gather" in first["twiml"]

    chosen = admin_client.get(url, {"contact": "(212) 555-0151"}).context
    assert chosen["spoken"][0] == "Hello Bob, this is Acme."

    missing = admin_client.get(url, {"contact": "+12125550199"})
    assert missing.context["spoken"][0] == "Hello there, this is Acme."
    assert "No contact" in missing.content.decode()


@pytest.mark.django_db
def test_campaign_pages_are_for_staff_only(client, django_user_model):
    campaign = CampaignFactory()
    user = django_user_model.objects.create_user("caller", password="pw-for-tests-1")
    client.force_login(user)
    for name in ("preview", "results", "results_csv"):
        response = client.get(reverse(f"admin:campaigns_campaign_{name}", args=[campaign.pk]))
        assert response.status_code == 302


@pytest.mark.django_db
def test_attempts_filter_by_outcome(admin_client):
    now = timezone.now()
    ended = {"ended_at": now, "dialled_at": now}
    busy = CallAttemptFactory(status="busy", **ended)
    machine = CallAttemptFactory(status="completed", answered_by="machine", **ended)
    live = CallAttemptFactory(status="ringing")
    url = reverse("admin:calls_callattempt_changelist")
    for outcome, expected in [("busy", busy), ("machine", machine), ("in_progress", live)]:
        response = admin_client.get(url, {"outcome": outcome})
        assert list(response.context["cl"].result_list) == [expected]
    assert "Answering machine" in admin_client.get(url).content.decode()


@pytest.mark.django_db
def test_keypad_answers_show_their_meaning_in_the_questions_order(admin_client):
    campaign = CampaignFactory(name="Plans")
    plan = QuestionFactory(
        campaign=campaign,
        position=1,
        kind="digits",
        valid_answers=["1", "2", "3"],
        prompt="Which plan are you on? Press 1 for basic, 2 for plus, or 3 for premium.",
    )
    for value in ["3", "2", "2", "7"]:  # "7" is not a listed answer: shown after them
        answer(plan, value)
    (result,) = question_results(campaign)
    assert result.labelled == [("1 — basic", 0), ("2 — plus", 2), ("3 — premium", 1), ("7", 1)]
    body = admin_client.get(
        reverse("admin:campaigns_campaign_results", args=[campaign.pk])
    ).content.decode()
    assert body.index("1 — basic") < body.index("2 — plus") < body.index("3 — premium")
    assert "2 (50%)" in body and "0 (0%)" in body  # shares of all four answers


def test_a_prompt_says_what_keys_mean():
    from campaigns.models import Question

    def meanings(prompt, **fields):
        return Question(prompt=prompt, **({"kind": "digits"} | fields)).answer_meanings()

    assert meanings("Press 1 for yes, 2 for no.") == {"1": "yes", "2": "no"}
    assert meanings("1 for basic, 2 for plus or 3 for premium", valid_answers=["1", "2"]) == {
        "1": "basic",
        "2": "plus",
    }
    assert meanings("1 means not at all and 5 means very likely", kind="scale") == {
        "1": "not at all",
        "5": "very likely",
    }
    assert meanings("How many people live with you?") == {}
    assert meanings("Press 1 for yes", kind="speech") == {}


@pytest.mark.django_db
def test_keypad_answers_follow_the_prompts_order_when_no_answer_is_listed():
    campaign = CampaignFactory()
    q = QuestionFactory(
        campaign=campaign, kind="digits", prompt="Press 1 for mornings, 2 for evenings."
    )
    for value in ["2", "2", "1", "5"]:
        answer(q, value)
    (result,) = question_results(campaign)
    assert result.labelled == [("1 — mornings", 1), ("2 — evenings", 2), ("5", 1)]
