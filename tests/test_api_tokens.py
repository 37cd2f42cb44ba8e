"""API tokens are stored hashed: the key is shown once to whoever issues it, never again."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from voicesurvey.accounts.models import ApiToken, issue_token

pytestmark = pytest.mark.django_db

KEY = re.compile(r"\b[0-9a-f]{40}\b")


@pytest.fixture
def staff(django_user_model):
    def make(username, *codenames):
        user = django_user_model.objects.create_user(username, password="pw", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        return user

    return make


@pytest.fixture
def viewer(client, staff):
    """Staff holding every view_* permission and nothing else."""
    user = staff("viewer")
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    client.force_login(user)
    return client


def authenticates(anon_client, key) -> bool:
    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return anon_client.get("/api/v1/campaigns/").status_code == 200


def test_a_view_only_staff_user_sees_tokens_but_never_a_key(viewer, admin_user):
    token, key = issue_token(admin_user, name="CRM sync")
    pages = [
        "/admin/accounts/apitoken/",
        f"/admin/accounts/apitoken/{token.pk}/change/",
        f"/admin/accounts/apitoken/{token.pk}/history/",
    ]
    for url in pages:
        response = viewer.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert key not in body and token.digest not in body, url
        assert key[:8] in body, url
    # The old page that listed every key in clear is gone.
    assert viewer.get("/admin/authtoken/tokenproxy/").status_code == 404
    assert viewer.get("/admin/authtoken/token/").status_code == 404


def test_a_view_only_staff_user_cannot_issue_or_revoke_tokens(viewer, admin_user):
    token, _ = issue_token(admin_user)
    assert viewer.get("/admin/accounts/apitoken/add/").status_code == 403
    response = viewer.post("/admin/accounts/apitoken/add/", {"user": admin_user.pk})
    assert response.status_code == 403
    response = viewer.post(f"/admin/accounts/apitoken/{token.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert ApiToken.objects.count() == 1


def test_the_admin_shows_the_key_once_and_it_authenticates(admin_client, admin_user, anon_client):
    response = admin_client.post(
        "/admin/accounts/apitoken/add/", {"user": admin_user.pk, "name": "Reports"}, follow=True
    )
    shown = " ".join(str(m) for m in response.context["messages"])
    (key,) = KEY.findall(shown)
    assert key in response.content.decode()
    token = ApiToken.objects.get()
    assert token.digest != key and key not in token.digest and token.prefix == key[:8]
    assert authenticates(anon_client, key)
    # Never again: not on the list, nor on the token's page.
    for url in ["/admin/accounts/apitoken/", f"/admin/accounts/apitoken/{token.pk}/change/"]:
        assert key not in admin_client.get(url).content.decode()


def test_staff_may_issue_a_token_for_themselves_only(client, staff, admin_user):
    user = staff("ops", "add_apitoken", "view_apitoken")
    client.force_login(user)
    response = client.post("/admin/accounts/apitoken/add/", {"user": admin_user.pk})
    assert response.status_code == 200  # the form again, with the error
    assert not ApiToken.objects.exists()
    response = client.post("/admin/accounts/apitoken/add/", {"user": user.pk})
    assert response.status_code == 302
    assert ApiToken.objects.get().user == user
    assert any(KEY.search(str(m)) for m in get_messages(response.wsgi_request))


def test_a_revoked_token_stops_working(admin_client, admin_user, anon_client):
    token, key = issue_token(admin_user)
    assert authenticates(anon_client, key)
    response = admin_client.post(f"/admin/accounts/apitoken/{token.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not authenticates(anon_client, key)


def test_a_token_of_an_inactive_user_is_refused(admin_user, anon_client):
    _, key = issue_token(admin_user)
    admin_user.is_active = False
    admin_user.save()
    assert not authenticates(anon_client, key)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_clear_drf_token_keeps_working_after_the_upgrade_and_is_erased(
    django_user_model, anon_client
):
    user = django_user_model.objects.create_superuser("old", "old@example.com", "pw")
    key = "0123456789abcdef0123456789abcdef01234567"
    executor = MigrationExecutor(connection)
    executor.migrate([("accounts", "0001_initial")])
    with connection.cursor() as cursor:  # the table rest_framework.authtoken left behind
        cursor.execute(
            'CREATE TABLE "authtoken_token" ("key" varchar(40) PRIMARY KEY, '
            '"created" timestamp with time zone NOT NULL, "user_id" integer NOT NULL)'
            if connection.vendor == "postgresql"
            else 'CREATE TABLE "authtoken_token" ("key" varchar(40) PRIMARY KEY, '
            '"created" datetime NOT NULL, "user_id" integer NOT NULL)'
        )
        cursor.execute(
            'INSERT INTO "authtoken_token" ("key", "created", "user_id") VALUES (%s, %s, %s)',
            [key, "2025-01-02 03:04:05", user.pk],
        )
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
        assert authenticates(anon_client, key)
        token = ApiToken.objects.get(user=user)
        assert token.digest != key and token.prefix == key[:8]
        with connection.cursor() as cursor:
            cursor.execute('SELECT COUNT(*) FROM "authtoken_token"')
            assert cursor.fetchone()[0] == 0
    finally:
        with connection.cursor() as cursor:
            cursor.execute('DROP TABLE IF EXISTS "authtoken_token"')
