import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def issue(*args) -> str:
    out = io.StringIO()
    call_command("issue_token", *args, stdout=out)
    return out.getvalue().strip()


def test_issue_token_prints_a_key_that_authenticates(admin_user, anon_client):
    key = issue(admin_user.username)
    assert key == Token.objects.get(user=admin_user).key
    assert issue(admin_user.username) == key  # the same token until rotated
    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert anon_client.get("/api/v1/campaigns/").status_code == 200


def test_rotate_replaces_the_token(admin_user, anon_client):
    old = issue(admin_user.username)
    new = issue(admin_user.username, "--rotate")
    assert new != old
    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    assert anon_client.get("/api/v1/campaigns/").status_code == 401


def test_unknown_or_inactive_user_is_an_error(django_user_model):
    with pytest.raises(CommandError, match="No user"):
        issue("ghost")
    django_user_model.objects.create_user("gone", is_active=False)
    with pytest.raises(CommandError, match="inactive"):
        issue("gone")
