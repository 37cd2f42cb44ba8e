import datetime as dt
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from calls.models import Answer, CallAttempt, ScheduledCall
from calls.webhooks.survey import preview_survey, render_text
from campaigns.models import Question
from contacts.models import Exclusion, is_excluded
from tests.factories import (
    ContactFactory,
    ExclusionFactory,
    QuestionFactory,
    RunningCampaignFactory,
)
from tests.webhook_helpers import live_attempt, said, send_status, signed_post, twiml, voice_url

K = Question.Kind


@pytest.fixture
def campaign(db):
    campaign = RunningCampaignFactory(
        intro_message="Hello {name|there}, this is {company|our company}.",
        closing_message="Thank you {name}. Goodbye.",
        voice="Polly.Joanna",
        language="en-GB",
    )
    QuestionFactory(campaign=campaign, position=1, kind=K.YES_NO, prompt="Happy? 1 yes, 2 no.")
    QuestionFactory(
        campaign=campaign,
        position=2,
        kind=K.DIGITS,
        prompt="Which store? 1, 2 or 3.",
        valid_answers=["1", "2", "3"],
    )
    QuestionFactory(
        campaign=campaign,
        position=3,
        kind=K.SCALE,
        prompt="Rate us 1 to 5.",
        min_value=1,
        max_value=5,
    )
    QuestionFactory(campaign=campaign, position=4, kind=K.SPEECH, prompt="Anything else?")
    return campaign


@pytest.fixture
def attempt(campaign, frozen):
    contact = ContactFactory(campaign=campaign, name="Ada", attributes={"company": "Acme"})
    return live_attempt(now=frozen, contact=contact, status="in_progress")


def answer_call(client, attempt, **params):
    return twiml(signed_post(client, voice_url(attempt), {"CallStatus": "in-progress", **params}))


def reply(client, root, **params):
    """Answer the <Gather> of `root` (Digits / SpeechResult…), or stay silent (no params):
    silence follows the <Redirect> after it, as Twilio does."""
    if params:
        url = root.find("Gather").get("action")
    else:
        url = root.find("Redirect").text
    return twiml(signed_post(client, url, {"CallStatus": "in-progress", **params}))


def asked(root) -> int:
    """The position of the question the <Gather> asks."""
    return int(urlsplit(root.find("Gather").get("action")).path.rstrip("/").split("/")[-1])


def answers(attempt):
    return {
        a.question.position: a.value
        for a in Answer.objects.filter(attempt__contact=attempt.contact).select_related("question")
    }


@pytest.mark.django_db
def test_whole_survey_with_every_kind_of_answer(client, attempt, frozen):
    root = answer_call(client, attempt)
    assert said(root)[0] == "Hello Ada, this is Acme."
    assert root[0].tag == "Say"  # the intro, before the first question's <Gather>
    gather = root.find("Gather")
    assert gather.get("action") == (
        f"{settings.PUBLIC_BASE_URL}/webhooks/gather/{attempt.call_id}/1/"
    )
    assert gather.get("method") == "POST"
    assert gather.get("input") == "dtmf"
    assert gather.get("numDigits") == "1"
    assert gather.find("Say").text == "Happy? 1 yes, 2 no."
    assert gather.find("Say").get("voice") == "Polly.Joanna"
    assert gather.find("Say").get("language") == "en-GB"
    assert root.find("Redirect").text == gather.get("action")

    root = reply(client, root, Digits="1")
    assert asked(root) == 2
    root = reply(client, root, Digits="2")
    assert asked(root) == 3
    root = reply(client, root, Digits="4")
    assert asked(root) == 4
    gather = root.find("Gather")
    assert gather.get("input") == "dtmf speech"
    assert gather.get("language") == "en-GB"
    root = reply(client, root, SpeechResult="The parking is too small", Confidence="0.87")

    assert root.find("Gather") is None
    assert said(root) == ["Thank you Ada. Goodbye."]
    assert root[-1].tag == "Hangup"
    assert answers(attempt) == {1: "yes", 2: "2", 3: "4", 4: "The parking is too small"}
    assert Answer.objects.get(attempt=attempt, question__position=4).confidence == 0.87
    attempt.refresh_from_db()
    assert attempt.survey_finished

    send_status(client, attempt, "completed", CallDuration="80", AnsweredBy="human")
    attempt.contact.refresh_from_db()
    assert attempt.contact.state == "completed"


@pytest.mark.django_db
def test_invalid_answer_is_reprompted_then_the_valid_one_is_taken(client, attempt):
    root = answer_call(client, attempt)
    root = reply(client, root, Digits="7")  # yes/no takes 1 or 2
    assert asked(root) == 1
    assert said(root) == ["Sorry, I did not get that.", "Happy? 1 yes, 2 no."]
    assert root.find("Gather").get("action").endswith("/1/?retry=1")
    assert answers(attempt) == {}
    root = reply(client, root, Digits="2")
    assert asked(root) == 2
    assert answers(attempt) == {1: "no"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("position", "bad", "good", "value"),
    [
        (2, "5", "3", "3"),  # digits outside the valid answers
        (3, "7", "5", "5"),  # scale outside 1-5
        (4, {"Digits": "5"}, {"SpeechResult": "Fine"}, "Fine"),  # keys on a spoken question
    ],
)
def test_each_kind_rejects_what_it_does_not_accept(client, attempt, position, bad, good, value):
    for earlier in range(1, position):
        Answer.objects.create(
            attempt=attempt,
            question=Question.objects.get(campaign=attempt.campaign, position=earlier),
            value="x",
            answered_at=attempt.created_at,
        )
    root = answer_call(client, attempt)
    assert asked(root) == position
    bad = bad if isinstance(bad, dict) else {"Digits": bad}
    good = good if isinstance(good, dict) else {"Digits": good}
    root = reply(client, root, **bad)
    assert asked(root) == position
    assert said(root)[0] == "Sorry, I did not get that."
    root = reply(client, root, **good)
    assert answers(attempt)[position] == value


@pytest.mark.django_db
def test_silence_reprompts_up_to_the_limit_then_moves_on(client, attempt):
    Question.objects.filter(campaign=attempt.campaign, position=1).update(max_reprompts=2)
    root = answer_call(client, attempt)
    root = reply(client, root)  # silence
    assert asked(root) == 1
    assert root.find("Gather").get("action").endswith("?retry=1")
    root = reply(client, root)
    assert asked(root) == 1
    assert root.find("Gather").get("action").endswith("?retry=2")
    root = reply(client, root)  # third silence: the question is skipped
    assert asked(root) == 2
    assert said(root) == ["Which store? 1, 2 or 3."]
    assert answers(attempt) == {}


@pytest.mark.django_db
def test_replayed_answer_is_stored_once_and_answered_the_same(client, attempt):
    root = answer_call(client, attempt)
    url = root.find("Gather").get("action")
    first = signed_post(client, url, {"Digits": "1"})
    second = signed_post(client, url, {"Digits": "1"})
    assert first.content == second.content
    assert Answer.objects.filter(attempt=attempt).count() == 1


@pytest.mark.django_db
def test_hang_up_mid_survey_keeps_answers_and_the_next_call_resumes(client, attempt, frozen):
    root = answer_call(client, attempt)
    root = reply(client, root, Digits="1")
    root = reply(client, root, Digits="3")
    send_status(client, attempt, "completed", CallDuration="25")  # hung up at question 3
    contact = attempt.contact
    contact.refresh_from_db()
    assert answers(attempt) == {1: "yes", 2: "3"}
    assert contact.state == "not_reached"
    assert contact.next_attempt_at == frozen + dt.timedelta(
        minutes=attempt.campaign.completion_retry_minutes
    )

    second = live_attempt(now=frozen, contact=contact, number=2, status="in_progress")
    root = answer_call(client, second)
    assert said(root)[0] == "Hello Ada, this is Acme."
    assert asked(root) == 3
    root = reply(client, root, Digits="5")
    root = reply(client, root, SpeechResult="No", Confidence="0.9")
    assert root[-1].tag == "Hangup"
    send_status(client, second, "completed", CallDuration="20")
    contact.refresh_from_db()
    assert contact.state == "completed"
    assert answers(attempt) == {1: "yes", 2: "3", 3: "5", 4: "No"}


@pytest.mark.django_db
def test_opt_out_at_the_second_question(client, attempt, frozen):
    same_number_elsewhere = ContactFactory(phone=attempt.contact.phone)
    root = answer_call(client, attempt)
    root = reply(client, root, Digits="1")
    root = reply(client, root, Digits="9")
    assert root.find("Gather") is None
    assert "You will not be called again" in said(root)[0]
    assert root[-1].tag == "Hangup"

    exclusion = Exclusion.objects.get(phone=attempt.contact.phone)
    assert exclusion.campaign is None
    assert exclusion.source == "opt_out"
    assert is_excluded(
        attempt.contact.phone, campaign_id=same_number_elsewhere.campaign_id, now=frozen
    )
    same_number_elsewhere.refresh_from_db()
    assert same_number_elsewhere.state == "excluded"
    assert answers(attempt) == {1: "yes"}

    send_status(client, attempt, "completed", CallDuration="15")
    attempt.refresh_from_db()
    attempt.contact.refresh_from_db()
    assert attempt.opted_out
    assert attempt.contact.state == "refused"


@pytest.mark.django_db
def test_opt_out_makes_an_expiring_exclusion_permanent(client, attempt, frozen):
    ExclusionFactory(phone=attempt.contact.phone, expires_at=frozen + dt.timedelta(days=1))
    root = answer_call(client, attempt)
    reply(client, root, Digits="9")
    exclusion = Exclusion.objects.get(phone=attempt.contact.phone)
    assert exclusion.expires_at is None


@pytest.mark.django_db
def test_opt_out_key_is_the_campaigns_and_works_on_a_spoken_question(client, attempt):
    attempt.campaign.opt_out_key = "*"
    attempt.campaign.save()
    for position in (1, 2, 3):
        Answer.objects.create(
            attempt=attempt,
            question=Question.objects.get(campaign=attempt.campaign, position=position),
            value="x",
            answered_at=attempt.created_at,
        )
    root = answer_call(client, attempt)
    assert asked(root) == 4
    root = reply(client, root, Digits="*")
    assert root[-1].tag == "Hangup"
    assert Exclusion.objects.filter(phone=attempt.contact.phone, source="opt_out").exists()


@pytest.mark.django_db
def test_machine_is_hung_up_on_under_the_hang_up_policy(client, attempt, frozen):
    root = answer_call(client, attempt, AnsweredBy="machine_start")
    assert [el.tag for el in root] == ["Hangup"]
    attempt.refresh_from_db()
    assert attempt.answered_by == "machine"
    send_status(client, attempt, "completed", CallDuration="4")
    attempt.contact.refresh_from_db()
    assert attempt.contact.state == "not_reached"
    assert attempt.contact.next_attempt_at == frozen + dt.timedelta(
        minutes=attempt.campaign.retry_machine_minutes
    )


@pytest.mark.django_db
def test_machine_gets_the_voicemail_message_under_the_voicemail_policy(client, attempt):
    attempt.campaign.machine_policy = "voicemail"
    attempt.campaign.voicemail_message = "Hello {name}, we will call again. {company|}"
    attempt.campaign.save()
    root = answer_call(client, attempt, AnsweredBy="machine_end_beep")
    assert [el.tag for el in root] == ["Say", "Hangup"]
    assert said(root) == ["Hello Ada, we will call again. Acme"]
    attempt.refresh_from_db()
    assert attempt.answered_by == "machine"


@pytest.mark.django_db
def test_human_detected_hears_the_survey(client, attempt):
    root = answer_call(client, attempt, AnsweredBy="human")
    assert asked(root) == 1
    attempt.refresh_from_db()
    assert attempt.answered_by == "human"


@pytest.mark.django_db
def test_goodbyes_are_the_campaigns_own_words(client, attempt, frozen):
    campaign = attempt.campaign
    campaign.language = "fr-FR"
    campaign.callback_key = "8"
    campaign.opt_out_message = "Vous ne serez plus appelé. Au revoir {name|}."
    campaign.callback_message = "Merci {name|}, nous vous rappellerons dans {delay}."
    campaign.save()
    attempt.contact.name = "Anne"
    attempt.contact.save()
    root = reply(client, answer_call(client, attempt), Digits="8")
    assert said(root) == ["Merci Anne, nous vous rappellerons dans 2 hours."]

    other = live_attempt(now=frozen, campaign=campaign)
    other.contact.name = ""
    other.contact.save()
    root = reply(client, answer_call(client, other), Digits="9")
    assert said(root) == ["Vous ne serez plus appelé. Au revoir."]  # no name: no gap


@pytest.mark.django_db
def test_callback_key_books_a_later_call(client, attempt, frozen):
    attempt.campaign.callback_key = "8"
    attempt.campaign.callback_delay_minutes = 120
    attempt.campaign.save()
    root = answer_call(client, attempt)
    root = reply(client, root, Digits="8")
    assert said(root) == ["Thank you. We will call you back in about 2 hours. Goodbye."]
    assert root[-1].tag == "Hangup"
    attempt.refresh_from_db()
    assert attempt.callback_requested_for == frozen + dt.timedelta(hours=2)
    send_status(client, attempt, "completed", CallDuration="10")
    attempt.contact.refresh_from_db()
    assert attempt.contact.state == "not_reached"
    assert attempt.contact.next_attempt_at == frozen + dt.timedelta(hours=2)
    booking = ScheduledCall.objects.get(contact=attempt.contact)
    assert (booking.status, booking.next_run_at, booking.rrule) == (
        "scheduled",
        frozen + dt.timedelta(hours=2),
        "",
    )


@pytest.mark.django_db
def test_callback_asked_late_in_the_evening_is_booked_for_the_next_window(client, attempt, frozen):
    attempt.campaign.callback_key = "8"
    attempt.campaign.callback_delay_minutes = 14 * 60  # 21:00 in New York: after the window
    attempt.campaign.save()
    root = reply(client, answer_call(client, attempt), Digits="8")
    booking = ScheduledCall.objects.get(contact=attempt.contact)
    local = booking.next_run_at.astimezone(ZoneInfo(attempt.contact.zones[0]))
    assert local.time() == attempt.campaign.window_start
    assert booking.next_run_at == frozen + dt.timedelta(hours=26)  # 09:00 next day
    assert "We will call you back in about" in said(root)[0]


@pytest.mark.django_db
def test_callback_key_does_nothing_where_the_campaign_has_none(client, attempt):
    root = answer_call(client, attempt)
    root = reply(client, root, Digits="8")
    assert asked(root) == 1  # an invalid answer to a yes/no question
    attempt.refresh_from_db()
    assert attempt.callback_requested_for is None


@pytest.mark.django_db
def test_multi_digit_question_gathers_up_to_its_length_ended_by_hash(client, attempt):
    question = Question.objects.get(campaign=attempt.campaign, position=1)
    question.kind, question.max_digits, question.valid_answers = K.DIGITS, 4, []
    question.save()
    root = answer_call(client, attempt)
    gather = root.find("Gather")
    assert (gather.get("numDigits"), gather.get("finishOnKey")) == ("4", "#")
    reply(client, root, Digits="1234")
    assert answers(attempt) == {1: "1234"}


@pytest.mark.django_db
def test_question_the_campaign_does_not_have_is_404(client, attempt):
    url = f"{settings.PUBLIC_BASE_URL}/webhooks/gather/{attempt.call_id}/99/"
    assert signed_post(client, url, {"Digits": "1"}).status_code == 404


@pytest.mark.django_db
def test_survey_without_questions_says_intro_and_closing(client, frozen):
    campaign = RunningCampaignFactory(intro_message="Hi.", closing_message="Bye.")
    attempt = live_attempt(now=frozen, campaign=campaign, status="in_progress")
    root = answer_call(client, attempt)
    assert said(root) == ["Hi.", "Bye."]
    attempt.refresh_from_db()
    assert attempt.survey_finished


# --- placeholders and preview ---------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello {name}.", "Hello Ada."),
        ("Hello {nickname|friend}.", "Hello friend."),
        ("Your order {order_id}.", "Your order 1234."),
        ("Your order {missing}.", "Your order."),
        ("Hello {name|there}, {city|}", "Hello Ada,"),
        ("Customer {external_id|unknown}", "Customer unknown"),
        ("Broken {name and {", "Broken name and"),
        ("Number {phone|hidden}", "Number hidden"),
        ("{ name }!", "Ada!"),
    ],
)
def test_placeholders_are_filled_from_the_contact(text, expected):
    contact = ContactFactory(
        name="Ada", attributes={"order_id": 1234, "city": "", "phone": "+12125550100"}
    )
    assert render_text(text, contact) == expected


@pytest.mark.django_db
def test_placeholders_without_a_contact_use_their_fallbacks():
    assert render_text("Hello {name|there} {x}.", None) == "Hello there."


@pytest.mark.django_db
def test_preview_shows_the_whole_survey_as_the_contact_would_hear_it(campaign):
    import xml.etree.ElementTree as ET

    contact = ContactFactory(campaign=campaign, name="Grace", attributes={"company": "Initech"})
    root = ET.fromstring(preview_survey(campaign, contact))
    assert said(root) == [
        "Hello Grace, this is Initech.",
        "Happy? 1 yes, 2 no.",
        "Which store? 1, 2 or 3.",
        "Rate us 1 to 5.",
        "Anything else?",
        "Thank you Grace. Goodbye.",
    ]
    assert root[-1].tag == "Hangup"
    assert root.find("Redirect") is None
    anonymous = ET.fromstring(preview_survey(campaign))
    assert said(anonymous)[0] == "Hello there, this is our company."
    assert said(anonymous)[-1] == "Thank you. Goodbye."


@pytest.mark.django_db
def test_answered_by_attempt_of_rescued_call_is_still_stored(client, attempt, frozen):
    # The call goes on while recovery closed the attempt: answers are still kept.
    CallAttempt.objects.filter(pk=attempt.pk).update(
        status="failed", error_code="lost", ended_at=frozen
    )
    root = answer_call(client, attempt)
    reply(client, root, Digits="1")
    assert answers(attempt) == {1: "yes"}
