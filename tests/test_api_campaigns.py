import pytest

from campaigns.models import Campaign, Question
from tests.factories import AnswerFactory, CampaignFactory, QuestionFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/campaigns/"


def assert_error(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def new_campaign(**extra):
    return {
        "name": "Satisfaction",
        "timezone": "Europe/Paris",
        "weekdays": [0, 1, 2, 3, 4],
        "window_start": "10:00",
        "window_end": "18:00",
        "opt_out_key": "*",  # 9 is an answer of the 1-10 scale
        "questions": [
            {"position": 1, "prompt": "Happy? 1 yes, 2 no.", "kind": "yes_no"},
            {
                "position": 2,
                "prompt": "Rate us 1 to 10.",
                "kind": "scale",
                "min_value": 1,
                "max_value": 10,
            },
        ],
        **extra,
    }


def test_create_campaign_with_its_questions(api_client, admin_user):
    response = api_client.post(URL, new_campaign(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft"
    assert body["created_by"] == admin_user.username
    assert [q["position"] for q in body["questions"]] == [1, 2]
    campaign = Campaign.objects.get(pk=body["id"])
    # Question.clean() widened max_digits so "10" can be keyed in.
    assert campaign.questions.get(position=2).max_digits == 2


def test_list_is_paginated_filtered_and_ordered(api_client):
    CampaignFactory(name="B", status=Campaign.Status.RUNNING)
    CampaignFactory(name="A", status=Campaign.Status.RUNNING)
    CampaignFactory(name="C")
    response = api_client.get(URL, {"status": "running", "ordering": "name"})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [c["name"] for c in body["results"]] == ["A", "B"]
    page = api_client.get(URL, {"page_size": 1}).json()
    assert len(page["results"]) == 1 and page["next"]


def test_window_outside_the_legal_window_is_refused_with_the_field(api_client):
    response = api_client.post(URL, new_campaign(window_end="22:30"), format="json")
    error = assert_error(response, 400, "invalid")
    assert "window_end" in error["details"]
    assert not Campaign.objects.exists()


def test_bad_question_is_refused_and_nothing_is_written(api_client):
    data = new_campaign()
    data["questions"][1]["max_value"] = 0  # a scale from 1 to 0
    error = assert_error(api_client.post(URL, data, format="json"), 400, "invalid")
    assert error["details"]["questions"] == [
        "Question 2, max_value: A scale needs a minimum below its maximum."
    ]
    assert not Campaign.objects.exists() and not Question.objects.exists()


def test_an_answer_on_the_opt_out_key_is_refused(api_client):
    # With the default opt-out key 9, a caller rating us 9 out of 10 would be opted out.
    data = new_campaign(opt_out_key="9")
    error = assert_error(api_client.post(URL, data, format="json"), 400, "invalid")
    [problem] = error["details"]["questions"]
    assert problem.startswith("Question 2, min_value: Key 9 is this campaign's opt-out key")
    assert not Campaign.objects.exists()


def test_a_key_change_that_would_swallow_an_answer_is_refused(api_client):
    campaign = CampaignFactory(callback_key="")
    QuestionFactory(campaign=campaign, position=1, kind="yes_no")
    url = f"{URL}{campaign.pk}/"
    error = assert_error(api_client.patch(url, {"callback_key": "2"}, format="json"), 400)
    assert "Question 1 takes 2 as an answer" in error["details"]["callback_key"][0]
    campaign.refresh_from_db()
    assert campaign.callback_key == ""
    assert api_client.patch(url, {"callback_key": "3"}, format="json").status_code == 200


def test_a_question_given_by_position_keeps_its_stored_answers_for_the_check(api_client):
    campaign = CampaignFactory(opt_out_key="*")
    QuestionFactory(campaign=campaign, position=1, kind="scale", min_value=0, max_value=10)
    url = f"{URL}{campaign.pk}/"
    reworded = {"position": 1, "prompt": "From 0 to 10?"}
    assert api_client.patch(url, {"questions": [reworded]}, format="json").status_code == 200
    moved_key = {"opt_out_key": "0", "questions": [reworded]}
    error = assert_error(api_client.patch(url, moved_key, format="json"), 400)
    [problem] = error["details"]["questions"]
    assert problem.startswith("Question 1, min_value: Key 0 is this campaign's opt-out key")


def test_duplicate_question_positions_are_refused(api_client):
    data = new_campaign()
    data["questions"][1]["position"] = 1
    assert_error(api_client.post(URL, data, format="json"), 400, "invalid")


@pytest.mark.parametrize(
    "body",
    [
        {"max_attempts": "many"},
        {"max_attempts": 10**30},
        {"retry_busy_minutes": 10**20},
        {"start_at": "next tuesday"},
        {"weekdays": "monday"},
        {"weekdays": [True]},
        {"timezone": "Mars/Olympus"},
        {"caller_id": "not a number"},
        {"questions": "none"},
        {"questions": [{"position": "first"}]},
    ],
)
def test_bad_input_is_a_400_not_a_500(api_client, body):
    response = api_client.post(URL, new_campaign(**body), format="json")
    error = assert_error(response, 400, "invalid")
    assert error["details"]


def test_malformed_json_is_a_parse_error(api_client):
    response = api_client.post(URL, '{"name": ', content_type="application/json")
    assert_error(response, 400, "parse_error")


def test_update_keeps_answered_questions_and_refuses_to_drop_them(api_client):
    answer = AnswerFactory()
    campaign = answer.attempt.campaign
    url = f"{URL}{campaign.pk}/"
    kept = {"position": answer.question.position, "prompt": "Reworded?", "kind": "yes_no"}
    response = api_client.patch(url, {"questions": [kept]}, format="json")
    assert response.status_code == 200, response.content
    answer.question.refresh_from_db()
    assert answer.question.prompt == "Reworded?"  # same row, so its answers stay

    other = {"position": answer.question.position + 1, "prompt": "New?", "kind": "yes_no"}
    response = api_client.patch(url, {"questions": [other]}, format="json")
    assert_error(response, 400, "invalid")
    assert Question.objects.filter(pk=answer.question.pk).exists()


def test_partial_update_runs_the_model_rules(api_client):
    campaign = CampaignFactory()
    response = api_client.patch(f"{URL}{campaign.pk}/", {"window_start": "06:00"}, format="json")
    assert_error(response, 400, "invalid")
    campaign.refresh_from_db()
    assert campaign.window_start.hour == 9


def test_status_is_read_only(api_client):
    campaign = CampaignFactory()
    api_client.patch(f"{URL}{campaign.pk}/", {"status": "running"}, format="json")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_start_pause_resume_cancel(api_client):
    campaign = CampaignFactory()
    QuestionFactory(campaign=campaign)
    base = f"{URL}{campaign.pk}/"
    assert api_client.post(base + "start/").json()["status"] == "running"
    assert api_client.post(base + "pause/").json()["status"] == "paused"
    assert api_client.post(base + "resume/").json()["status"] == "running"
    assert api_client.post(base + "cancel/").json()["status"] == "cancelled"
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED


def test_illegal_transition_is_a_409(api_client):
    campaign = CampaignFactory()
    response = api_client.post(f"{URL}{campaign.pk}/pause/")
    error = assert_error(response, 409, "illegal_transition")
    assert "draft" in error["message"]
    no_questions = api_client.post(f"{URL}{campaign.pk}/start/")
    assert_error(no_questions, 409, "illegal_transition")


def test_delete_campaign(api_client):
    campaign = CampaignFactory()
    assert api_client.delete(f"{URL}{campaign.pk}/").status_code == 204
    assert not Campaign.objects.filter(pk=campaign.pk).exists()


def test_view_only_user_reads_but_cannot_change_or_start(viewer_client):
    campaign = CampaignFactory()
    QuestionFactory(campaign=campaign)
    assert viewer_client.get(URL).status_code == 200
    assert viewer_client.get(f"{URL}{campaign.pk}/").status_code == 200
    assert_error(viewer_client.post(URL, new_campaign(), format="json"), 403, "permission_denied")
    assert_error(viewer_client.patch(f"{URL}{campaign.pk}/", {"name": "x"}), 403)
    assert_error(viewer_client.post(f"{URL}{campaign.pk}/start/"), 403)
    assert_error(viewer_client.delete(f"{URL}{campaign.pk}/"), 403)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_user_without_view_permission_cannot_read(django_user_model):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("nobody"))
    assert_error(client.get(URL), 403)


def test_anonymous_gets_401_with_the_error_shape(anon_client):
    response = anon_client.get(URL)
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_bad_token_is_a_401(anon_client):
    anon_client.credentials(HTTP_AUTHORIZATION="Token nope")
    assert_error(anon_client.get(URL), 401, "authentication_failed")


def test_session_auth_works(admin_client):
    assert admin_client.get(URL).status_code == 200


@pytest.mark.parametrize("pk", ["999999", "99999999999999999999999", "abc"])
def test_unknown_campaign_is_a_404(api_client, pk):
    assert_error(api_client.get(f"{URL}{pk}/"), 404, "not_found")
    assert_error(api_client.post(f"{URL}{pk}/start/"), 404)


def test_wrong_method_is_a_405(api_client):
    campaign = CampaignFactory()
    assert_error(api_client.get(f"{URL}{campaign.pk}/start/"), 405, "method_not_allowed")


def test_unknown_api_path_is_a_404_with_the_error_shape(api_client):
    assert_error(api_client.get("/api/v1/nothing-here/"), 404, "not_found")


def test_bad_filter_value_is_a_400(api_client):
    assert_error(api_client.get(URL, {"status": "dancing"}), 400, "invalid")
    assert_error(api_client.get(URL, {"created_after": "yesterday"}), 400, "invalid")


def test_page_past_the_end_is_a_404(api_client):
    assert_error(api_client.get(URL, {"page": 99}), 404, "not_found")


def test_new_question_without_a_prompt_is_refused_on_patch(api_client):
    campaign = CampaignFactory()
    response = api_client.patch(
        f"{URL}{campaign.pk}/", {"questions": [{"position": 1}]}, format="json"
    )
    assert "questions" in assert_error(response, 400, "invalid")["details"]
    assert not campaign.questions.exists()


@pytest.mark.parametrize(
    "params",
    [{"status": "x" * 5000}, {"page_size": "99999999999999999999"}, {"ordering": "nope"}],
)
def test_odd_query_strings_never_break_the_list(api_client, params):
    assert api_client.get(URL, params).status_code in (200, 400)


def test_huge_ids_in_filters_are_a_400(api_client):
    response = api_client.get("/api/v1/contacts/", {"campaign": "99999999999999999999999"})
    assert_error(response, 400, "invalid")


def test_api_root_lists_the_resources(api_client, anon_client):
    body = api_client.get("/api/v1/").json()
    assert set(body) == {
        "campaigns",
        "contacts",
        "exclusions",
        "attempts",
        "answers",
        "stats",
        "scheduled-calls",
        "webhook-subscriptions",
        "webhook-deliveries",
        "provider-accounts",
    }
    assert_error(anon_client.get("/api/v1/"), 401)


def test_body_above_the_memory_limit_is_a_413(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api_client.post(URL, new_campaign(description="x" * 5000), format="json")
    assert_error(response, 413, "too_large")
    assert not Campaign.objects.exists()
