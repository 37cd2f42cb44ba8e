import io

import pytest
from django.core.management import CommandError, call_command

from voicesurvey.accounts.models import ApiToken

pytestmark = pytest.mark.django_db


def issue(*args) -> str:
    out = io.StringIO()
    call_command("issue_token", *args, stdout=out)
    return out.getvalue().strip()


def test_issue_token_prints_a_key_that_authenticates(admin_user, anon_client):
    key = issue(admin_user.username)
    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert anon_client.get("/api/v1/campaigns/").status_code == 200


def test_each_call_issues_another_key_and_none_is_stored(admin_user):
    first, second = issue(admin_user.username), issue(admin_user.username, "--name", "CRM")
    assert first != second
    stored = ApiToken.objects.filter(user=admin_user)
    assert stored.count() == 2
    for token in stored:
        assert token.digest not in (first, second)
        assert first not in token.digest and second not in token.digest


def test_rotate_revokes_the_other_tokens(admin_user, anon_client):
    old = issue(admin_user.username)
    new = issue(admin_user.username, "--rotate")
    assert new != old
    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    assert anon_client.get("/api/v1/campaigns/").status_code == 401
    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {new}")
    assert anon_client.get("/api/v1/campaigns/").status_code == 200


def test_unknown_or_inactive_user_is_an_error(django_user_model):
    with pytest.raises(CommandError, match="No user"):
        issue("ghost")
    django_user_model.objects.create_user("gone", is_active=False)
    with pytest.raises(CommandError, match="inactive"):
        issue("gone")
