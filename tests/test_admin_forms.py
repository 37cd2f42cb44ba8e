"""Campaign and question forms without internals: weekdays as boxes, a question's settings
for its kind only, its accepted answers as a list of entries (never JSON)."""

import pytest
from django.urls import reverse

from campaigns.forms import QuestionForm
from campaigns.models import Campaign, Question
from tests.factories import CampaignFactory, QuestionFactory
from tests.test_admin import campaign_form

pytestmark = pytest.mark.django_db


def test_weekdays_are_ticked_boxes_saved_as_the_days_list(admin_client):
    page = admin_client.get(reverse("admin:campaigns_campaign_add")).content.decode()
    assert 'type="checkbox" name="weekdays" value="0" id="id_weekdays_0" checked' in page
    assert 'value="5" id="id_weekdays_5">' in page  # Saturday not ticked by default
    assert "Monday" in page and "Sunday" in page

    response = admin_client.post(
        reverse("admin:campaigns_campaign_add"),
        campaign_form(name="Weekend", weekdays=["5", "6"]),
    )
    assert response.status_code == 302
    assert Campaign.objects.get(name="Weekend").weekdays == [5, 6]


def test_no_weekday_ticked_is_refused(admin_client):
    data = campaign_form(name="Never")
    del data["weekdays"]
    response = admin_client.post(reverse("admin:campaigns_campaign_add"), data)
    assert response.status_code == 200
    assert "Tick at least one day." in response.content.decode()
    assert not Campaign.objects.filter(name="Never").exists()


def question_data(question, **changes):
    return {
        "campaign": question.campaign_id,
        "position": question.position,
        "prompt": question.prompt,
        "kind": question.kind,
        "min_value": "",
        "max_value": "",
        "max_digits": "1",
        "reprompt_message": "Sorry?",
        "max_reprompts": "2",
        **changes,
    }


def test_accepted_answers_are_a_list_of_boxes(admin_client):
    question = QuestionFactory(kind="digits", valid_answers=["1", "2"])
    url = reverse("admin:campaigns_question_change", args=[question.pk])
    page = admin_client.get(url).content.decode()
    assert 'class="vs-list-editor"' in page
    assert 'name="valid_answers" value="1"' in page and 'name="valid_answers" value="2"' in page
    assert 'name="valid_answers" value=""' in page  # room for more, without JS
    assert "campaigns/list_editor.js" in page
    data = question_data(question, kind="digits", valid_answers=["1", " 3 ", "", "1", "#"])
    assert admin_client.post(url, data).status_code == 302
    question.refresh_from_db()
    assert question.valid_answers == ["1", "3", "#"]  # trimmed, blanks and repeats dropped


def test_an_answer_that_is_not_a_keypad_entry_is_refused():
    question = QuestionFactory(kind="digits")
    form = QuestionForm(question_data(question, valid_answers=["1", "yes"]), instance=question)
    assert not form.is_valid()
    assert "Keypad entries use 0-9, * and # only: yes." in form.errors["valid_answers"][0]


def test_the_kind_select_says_which_settings_each_kind_reads(admin_client):
    campaign = CampaignFactory()
    QuestionFactory(campaign=campaign)
    page = admin_client.get(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    ).content.decode()
    assert "data-kind-fields=" in page
    assert "&quot;scale&quot;: [&quot;min_value&quot;, &quot;max_value&quot;]" in page
    assert "campaigns/question_form.js" in page


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("digits", {"min_value": None, "max_value": None, "valid_answers": ["1", "2"]}),
        ("yes_no", {"min_value": None, "max_value": None, "valid_answers": [], "max_digits": 1}),
        ("scale", {"min_value": 10, "max_value": 20, "valid_answers": [], "max_digits": 2}),
        ("speech", {"min_value": None, "max_value": None, "valid_answers": []}),
    ],
)
def test_settings_of_another_kind_are_not_kept(kind, expected):
    """A question switched from one kind to another keeps no stale range or answers."""
    question = QuestionFactory(kind="digits")
    data = question_data(
        question,
        kind=kind,
        min_value="10",
        max_value="20",
        valid_answers=["1", "2"],
        max_digits="3" if kind == "digits" else "1",
    )
    form = QuestionForm(data, instance=question)
    assert form.is_valid(), form.errors
    saved = form.save()
    for field, value in expected.items():
        assert getattr(saved, field) == value, field
    assert Question.objects.get(pk=question.pk).kind == kind
