import pytest
from django.core.management import call_command

from calls.demo import DEMO_CAMPAIGN, daytime_regions, ensure_demo_superuser, load_demo_campaign
from contacts.models import Contact


@pytest.mark.django_db
def test_demo_leaves_a_running_campaign_with_questions_and_callable_contacts(now):
    campaign, created = load_demo_campaign(now=now)
    assert created and campaign.status == "running"
    assert campaign.questions.count() == 3
    contacts = list(campaign.contacts.all())
    assert len(contacts) == 24
    assert all(c.is_callable(now) for c in contacts)
    assert len({c.phone for c in contacts}) == 24
    daytime_zones = {zone for _, zone in daytime_regions(now)}
    assert {c.timezone_key for c in contacts} <= daytime_zones


@pytest.mark.django_db
def test_demo_loader_is_idempotent(now):
    load_demo_campaign(now=now)
    _, created = load_demo_campaign(now=now)
    assert not created
    assert Contact.objects.filter(campaign__name=DEMO_CAMPAIGN).count() == 24


@pytest.mark.django_db
def test_demo_superuser_is_created_once_with_a_printed_password(tmp_path, django_user_model):
    first = ensure_demo_superuser(tmp_path / "pw")
    assert first.created and len(first.password) >= 12
    assert django_user_model.objects.get(username="admin").check_password(first.password)
    second = ensure_demo_superuser(tmp_path / "pw")
    assert not second.created and second.password == first.password
    assert django_user_model.objects.filter(is_superuser=True).count() == 1


@pytest.mark.django_db
def test_load_demo_command_prints_the_login(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("load_demo")
    out = capsys.readouterr().out
    password = (tmp_path / "admin-password").read_text().strip()
    assert "Login: admin" in out and password in out
