"""The back office's words: one vocabulary, the product's name, and the browser's language."""

from django.urls import reverse
from django.utils import timezone

from calls.models import CallAttempt
from campaigns.models import Campaign
from tests.factories import CallAttemptFactory, CampaignFactory, ContactFactory, ExclusionFactory
from tests.test_admin import campaign_form


def test_the_admin_is_named_voicesurvey_not_django(admin_client):
    body = admin_client.get(reverse("admin:index")).content.decode()
    assert "<title>Back office | voicesurvey</title>" in body
    assert '<a href="/admin/">voicesurvey</a>' in body
    assert "Django administration" not in body and "Django site admin" not in body


def test_the_admin_speaks_french_when_the_browser_asks_for_it(admin_client):
    french = admin_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")
    body = french.content.decode()
    assert '<html lang="fr"' in body
    assert "Ouvrir le tableau de bord" in body  # ours
    assert "Déconnexion" in body  # Django's own
    assert french["Content-Language"] == "fr"

    english = admin_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="de, en;q=0.5")
    assert "Open the dashboard" in english.content.decode()


def test_choice_labels_and_the_scope_are_translated_too(admin_client):
    ExclusionFactory(campaign=None)
    body = admin_client.get(
        reverse("admin:contacts_exclusion_changelist"), HTTP_ACCEPT_LANGUAGE="fr"
    ).content.decode()
    assert "Globale" in body
    assert "Manuel" in body  # the source, Manual


def test_the_api_answers_in_english_whatever_the_browser_asks(anon_client):
    response = anon_client.get("/api/v1/campaigns/", HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Authentication credentials were not provided."
    assert "Content-Language" not in response


def test_one_vocabulary_in_the_lists(admin_client):
    contact = ContactFactory(state="in_progress")
    ended = {"ended_at": timezone.now()}
    CallAttemptFactory(contact=contact, status=CallAttempt.Status.CANCELED, **ended)
    CallAttemptFactory(contact=contact, status=CallAttempt.Status.NO_ANSWER, **ended)
    ExclusionFactory(campaign=None)

    attempts = admin_client.get(reverse("admin:calls_callattempt_changelist")).content.decode()
    assert "Cancelled" in attempts and "Canceled" not in attempts
    assert "No answer" in attempts and "No Answer" not in attempts
    contacts = admin_client.get(reverse("admin:contacts_contact_changelist")).content.decode()
    assert "In progress" in contacts and "In Progress" not in contacts
    exclusions = admin_client.get(reverse("admin:contacts_exclusion_changelist")).content.decode()
    assert "Global" in exclusions and "All campaigns" not in exclusions


def test_the_dialler_health_line_speaks_the_operators_language():
    import datetime as dt

    from django.utils import translation

    from calls.models import DiallerHeartbeat
    from calls.reports.live import dialler_health

    now = dt.datetime(2026, 11, 23, 17, 0, 3, tzinfo=dt.UTC)
    beat = DiallerHeartbeat(last_tick_at=now - dt.timedelta(seconds=3), report={"dialled": 12})
    with translation.override("fr"):
        assert dialler_health(beat, now).text == (
            "En marche : dernier passage il y a 3 s, 12 appels passés."
        )
    with translation.override("en"):
        assert dialler_health(beat, now).text == "Ticking: last tick 3 s ago, 12 calls placed."


def test_a_refused_campaign_form_says_why_in_french(admin_client):
    data = campaign_form(name="Night owls", window_start="07:00", window_end="22:00")
    response = admin_client.post(
        reverse("admin:campaigns_campaign_add"), data, HTTP_ACCEPT_LANGUAGE="fr"
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "La plage d’appel doit tenir dans la plage légale" in body
    assert "(heure locale de l’appelé)" in body
    assert not Campaign.objects.filter(name="Night owls").exists()


def test_campaign_actions_report_in_french(admin_client):
    draft = CampaignFactory(name="Brouillon 1")
    running = CampaignFactory(name="Sondage", status=Campaign.Status.RUNNING)
    response = admin_client.post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": "pause_campaigns", "_selected_action": [draft.pk, running.pk]},
        follow=True,
        HTTP_ACCEPT_LANGUAGE="fr",
    )
    body = response.content.decode()
    assert "Mise en pause : Sondage (maintenant en pause)." in body
    assert (
        "Impossible de mettre en pause la campagne « Brouillon 1 » : son statut est "
        "« brouillon », et seule une campagne au statut « en cours d’appel » peut être "
        "mise en pause."
    ) in body
