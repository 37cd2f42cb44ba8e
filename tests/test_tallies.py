"""The contact tallies (contacts.tallies): after every way a contact is made, moved or removed,
the counts by campaign and state the back office shows equal the contacts counted."""

import io
import logging

import pytest
import time_machine
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calls.models import CallAttempt
from campaigns.models import Campaign
from contacts.editing import (
    add_exclusion,
    apply_exclusion,
    remove_exclusions,
    reset_contacts,
)
from contacts.importing import import_contacts
from contacts.models import Contact, StateTally, exclude_listed_contacts
from contacts.tallies import (
    counts_by_campaign,
    counts_by_state,
    ensure_sqlite_triggers,
    fold_tallies,
    reconcile_tallies,
    true_counts,
)
from tests.factories import CampaignFactory, ContactFactory, SurveyCampaignFactory, us_number
from tests.webhook_helpers import send_status

pytestmark = pytest.mark.django_db


def tallied() -> dict[tuple[int, str], int]:
    return {
        (campaign_id, state): n
        for campaign_id, states in counts_by_campaign().items()
        for state, n in states.items()
    }


def assert_tallies_true():
    """The tallies equal the contacts counted, before and after a fold, and a reconcile
    finds nothing to correct."""
    truth = true_counts()
    assert tallied() == truth
    fold_tallies()
    assert tallied() == truth
    assert reconcile_tallies() == {}


def csv_of(*phones) -> io.BytesIO:
    return io.BytesIO(("phone,name\n" + "".join(f"{p},Someone\n" for p in phones)).encode())


# --- every way a contact's state or campaign changes -------------------------------------------


def test_an_import_is_tallied(now):
    campaign = CampaignFactory()
    ContactFactory(campaign=campaign, phone=us_number(9), state="completed")
    add_exclusion(phone=us_number(3))
    phones = [*(us_number(n) for n in range(5)), us_number(0), us_number(9)]  # two already in
    report = import_contacts(campaign=campaign, stream=csv_of(*phones), now=now)
    assert (report.created, report.duplicates, report.excluded) == (5, 2, 1)
    assert counts_by_state(campaign.pk) == {"pending": 4, "excluded": 1, "completed": 1}
    assert_tallies_true()


def test_a_claim_and_a_final_status_are_tallied(open_now, run_tick, client):
    campaign = SurveyCampaignFactory()
    ContactFactory.create_batch(3, campaign=campaign)
    report = run_tick(open_now)
    assert report.dialled == 3
    assert counts_by_state(campaign.pk) == {"in_progress": 3}
    assert_tallies_true()

    attempt = CallAttempt.objects.select_related("contact").first()
    with time_machine.travel(open_now, tick=False):
        response = send_status(client, attempt, "completed", CallDuration="30", AnsweredBy="human")
    assert response.status_code == 204
    attempt.contact.refresh_from_db()
    assert counts_by_state(campaign.pk) == {
        "in_progress": 2,
        attempt.contact.state: 1,  # not finished the survey: called again later
    }
    assert attempt.contact.state != "in_progress"
    assert_tallies_true()


def test_do_not_call_and_its_removal_are_tallied(now):
    campaign = CampaignFactory()
    contact = ContactFactory(campaign=campaign)
    ContactFactory(campaign=campaign)
    entry = add_exclusion(phone=contact.phone)
    apply_exclusion(entry, now=now)
    assert counts_by_state(campaign.pk) == {"pending": 1, "excluded": 1}
    assert_tallies_true()

    remove_exclusions([entry], now=now)
    assert counts_by_state(campaign.pk) == {"pending": 2}
    assert_tallies_true()


def test_a_reset_is_tallied(now):
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    ContactFactory.create_batch(
        2, campaign=campaign, state="exhausted", attempts_count=3, last_attempt_number=3
    )
    assert reset_contacts(Contact.objects.all(), now=now) == 2
    assert counts_by_state(campaign.pk) == {"pending": 2}
    assert_tallies_true()


def test_the_admins_reset_action_is_tallied(admin_client):
    contact = ContactFactory(state="exhausted", attempts_count=3, last_attempt_number=3)
    response = admin_client.post(
        reverse("admin:contacts_contact_changelist"),
        {"action": "reset", "_selected_action": [contact.pk]},
    )
    assert response.status_code == 302
    assert counts_by_state(contact.campaign_id) == {"pending": 1}
    assert_tallies_true()


def test_a_move_to_another_campaign_is_tallied():
    first, second = CampaignFactory(), CampaignFactory()
    moving = ContactFactory(campaign=first, state="not_reached")
    ContactFactory(campaign=first)
    Contact.objects.filter(pk=moving.pk).update(campaign=second)
    assert counts_by_campaign([first.pk, second.pk]) == {
        first.pk: {"pending": 1},
        second.pk: {"not_reached": 1},
    }
    assert_tallies_true()


def test_deleting_contacts_and_a_campaign_is_tallied():
    kept, gone = CampaignFactory(), CampaignFactory()
    ContactFactory.create_batch(2, campaign=kept)
    ContactFactory.create_batch(3, campaign=gone, state="completed")
    Contact.objects.filter(pk=Contact.objects.filter(campaign=kept).first().pk).delete()
    gone_pk = gone.pk
    gone.delete()
    connection.check_constraints()  # what a commit checks: no key points at the campaign
    assert counts_by_campaign() == {kept.pk: {"pending": 1}}
    assert_tallies_true()
    assert not StateTally.objects.filter(campaign_id=gone_pk).exists()  # folded away


def test_updating_other_columns_writes_no_tally():
    ContactFactory.create_batch(3)
    rows = StateTally.objects.count()
    Contact.objects.update(name="Renamed", attempts_count=F("attempts_count"))
    Contact.objects.update(state=F("state"))  # set, but not changed
    assert StateTally.objects.count() == rows


# --- folding and reconciling -------------------------------------------------------------------


def test_the_fold_keeps_the_sums_and_leaves_one_row_per_state():
    campaign = CampaignFactory()
    contacts = ContactFactory.create_batch(4, campaign=campaign)
    Contact.objects.filter(pk=contacts[0].pk).update(state="completed")
    Contact.objects.filter(pk=contacts[1].pk).update(state="completed")
    Contact.objects.filter(pk=contacts[1].pk).update(state="pending")
    before = counts_by_state(campaign.pk)
    rows = StateTally.objects.filter(campaign=campaign).count()
    assert fold_tallies() > 0
    assert counts_by_state(campaign.pk) == before == {"pending": 3, "completed": 1}
    assert StateTally.objects.filter(campaign=campaign).count() == 2 < rows
    assert fold_tallies() == 0  # nothing left to fold


def test_reconcile_repairs_a_corrupted_tally_and_says_so(caplog):
    campaign = CampaignFactory()
    contacts = ContactFactory.create_batch(3, campaign=campaign)
    StateTally.objects.create(campaign=campaign, state="completed", n=5)
    StateTally.objects.create(campaign=campaign, state="pending", n=-1)
    with caplog.at_level(logging.WARNING, logger="contacts.tallies"):
        drift = reconcile_tallies()
    assert drift == {(campaign.pk, "completed"): -5, (campaign.pk, "pending"): 1}
    assert counts_by_state(campaign.pk) == {"pending": 3}
    assert f"campaign {campaign.pk} completed -5" in caplog.text
    assert all(c.phone not in caplog.text for c in contacts)
    assert reconcile_tallies() == {}


def test_reconcile_command_reports_the_correction(capsys):
    from django.core.management import call_command

    campaign = CampaignFactory()
    ContactFactory(campaign=campaign)
    StateTally.objects.filter(campaign=campaign).delete()
    call_command("reconcile_tallies")
    assert f"campaign {campaign.pk} pending: +1" in capsys.readouterr().out
    assert counts_by_state(campaign.pk) == {"pending": 1}


def test_triggers_a_table_rebuild_dropped_come_back_after_migrate():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite rebuilds a table to alter it; PostgreSQL keeps its triggers")
    campaign = CampaignFactory()
    contact = ContactFactory(campaign=campaign)
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER contact_tally_upd")
    Contact.objects.filter(pk=contact.pk).update(state="completed")  # not tallied
    assert counts_by_state(campaign.pk) == {"pending": 1}
    ensure_sqlite_triggers()
    assert counts_by_state(campaign.pk) == {"completed": 1}
    Contact.objects.filter(pk=contact.pk).update(state="refused")
    assert counts_by_state(campaign.pk) == {"refused": 1}


# --- the pages count the tallies, not the contacts ---------------------------------------------


def contact_queries(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "contacts_contact" in q["sql"]]


def test_campaign_list_shows_progress_without_reading_the_contacts(admin_client):
    campaign = CampaignFactory(name="Tallied")
    for state in ["completed", "completed", "refused", "pending", "excluded"]:
        ContactFactory(campaign=campaign, state=state)
    with CaptureQueriesContext(connection) as captured:
        body = admin_client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert "3 / 4" in body  # done (completed, refused) / callable (all but excluded)
    assert "50%" in body  # completed / callable
    assert contact_queries(captured) == []


@pytest.mark.parametrize(
    "query", ["", "?state__exact=pending", "?campaign__id__exact={pk}&state__exact=completed&p=1"]
)
def test_contact_list_counts_from_the_tallies_when_filtered_by_campaign_and_state(
    admin_client, query
):
    campaign = CampaignFactory()
    ContactFactory.create_batch(3, campaign=campaign, state="pending")
    ContactFactory.create_batch(2, campaign=campaign, state="completed")
    ContactFactory(state="pending")  # another campaign
    url = reverse("admin:contacts_contact_changelist") + query.format(pk=campaign.pk)
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(url)
    expected = {"": 6, "?state__exact=pending": 4}.get(query, 2)
    assert response.context["cl"].result_count == expected
    assert not [q for q in contact_queries(captured) if "COUNT(" in q.upper()]


def test_contact_list_with_a_search_counts_the_contacts(admin_client):
    ContactFactory(name="Findme")
    ContactFactory(name="Other")
    url = reverse("admin:contacts_contact_changelist") + "?q=Findme"
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(url)
    assert response.context["cl"].result_count == 1
    assert [q for q in contact_queries(captured) if "COUNT(" in q.upper()]


# --- any sequence of changes -------------------------------------------------------------------

STATES = [s.value for s in Contact.State]
operation = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 2), st.sampled_from(STATES)),
    st.tuples(st.just("set_state"), st.integers(0, 30), st.sampled_from(STATES)),
    st.tuples(st.just("move"), st.integers(0, 30), st.integers(0, 2)),
    st.tuples(st.just("rename"), st.integers(0, 30), st.just(None)),
    st.tuples(st.just("delete"), st.integers(0, 30), st.just(None)),
    st.tuples(st.just("exclude"), st.integers(0, 30), st.just(None)),
    st.tuples(st.just("reset"), st.integers(0, 2), st.just(None)),
    st.tuples(st.just("fold"), st.just(0), st.just(None)),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=st.lists(operation, max_size=15))
def test_any_sequence_of_changes_keeps_the_tallies_true(operations, now):
    with transaction.atomic():
        campaigns = [CampaignFactory(status=Campaign.Status.RUNNING) for _ in range(3)]
        made = 0
        for name, k, value in operations:
            ids = list(
                Contact.objects.filter(campaign__in=campaigns).order_by("pk").values_list("pk")
            )
            picked = [pk for (pk,) in ids[k % len(ids) :: 3]] if ids else []
            chosen = Contact.objects.filter(pk__in=picked)
            if name == "add":
                made += 1
                ContactFactory(campaign=campaigns[k], state=value, phone=us_number(7000 + made))
            elif name == "set_state":
                chosen.update(state=value)
            elif name == "move":
                for pk in picked:  # one at a time: a number is unique within a campaign
                    phone = Contact.objects.get(pk=pk).phone
                    target = campaigns[value]
                    if not Contact.objects.filter(campaign=target, phone=phone).exists():
                        Contact.objects.filter(pk=pk).update(campaign=target)
            elif name == "rename":
                chosen.update(name="Renamed")
            elif name == "delete":
                chosen.delete()
            elif name == "exclude":
                phones = list(chosen.values_list("phone", flat=True))
                exclude_listed_contacts(phones, campaign_id=None, now=now)
            elif name == "reset":
                reset_contacts(Contact.objects.filter(campaign=campaigns[k]), now=now)
            elif name == "fold":
                fold_tallies()
            assert tallied() == true_counts()
        assert reconcile_tallies() == {}
        transaction.set_rollback(True)
