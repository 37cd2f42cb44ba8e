"""Outbound webhooks: signed deliveries to a live receiver, retries with backoff, endpoints
disabled after failing for days, and emission that costs nothing when nobody subscribes."""

import datetime as dt
import importlib
import json
import socket
import threading
import uuid
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import OrmQ, Schedule

from hooks.editing import save_subscription, send_again
from hooks.emitting import emit
from hooks.models import WebhookDelivery, WebhookSubscription
from hooks.sending import (
    prune_deliveries,
    run_sweep,
    send_due_deliveries,
    send_event,
    start_sender,
)
from hooks.signing import SignatureError, signature_header, verify_signature

pytestmark = pytest.mark.django_db
MINUTE, HOUR, DAY = dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1)
DATA = {"attempt_id": "a1", "contact_id": 7, "phone": "+12125550100", "outcome": "busy"}


def subscribe(url, events=("attempt.finished",), **fields):
    return WebhookSubscription.objects.create(url=url, event_types=list(events), **fields)


def delivery():
    return WebhookDelivery.objects.get()


# --- delivered, signed ---------------------------------------------------------------------------


def test_a_delivery_reaches_the_receiver_signed_and_the_helper_verifies_it(receiver, now):
    subscription = subscribe(receiver.url)
    event_id = emit("attempt.finished", DATA, at=now)
    assert send_due_deliveries(now=now) == 1

    [got] = receiver.received
    assert got.path == "/hooks/voicesurvey"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["Voicesurvey-Event-Id"] == str(event_id)
    assert got.headers["Voicesurvey-Event-Type"] == "attempt.finished"
    signed_at = verify_signature(
        subscription.secret, got.headers["Voicesurvey-Signature"], got.body
    )
    assert signed_at > 0
    body = json.loads(got.body)
    assert body == {
        "id": str(event_id),
        "type": "attempt.finished",
        "created_at": "2026-11-23T12:00:00Z",
        "data": DATA,
    }
    with pytest.raises(SignatureError):  # another subscription's secret does not verify
        verify_signature("whsec_other", got.headers["Voicesurvey-Signature"], got.body)
    sent = delivery()
    assert (sent.status, sent.attempts, sent.last_status_code) == ("delivered", 1, 200)
    assert sent.delivered_at == now and sent.next_attempt_at is None
    assert send_due_deliveries(now=now + DAY) == 0 and len(receiver.received) == 1


def test_verify_signature_refuses_a_changed_body_a_wrong_secret_and_an_old_timestamp():
    body = b'{"id":"e1","type":"survey.completed"}'
    header = signature_header("whsec_s", body, timestamp=1_700_000_000)
    assert verify_signature("whsec_s", header, body, now=1_700_000_100) == 1_700_000_000
    for secret, sent, at in [
        ("whsec_s", body.replace(b"e1", b"e2"), 1_700_000_100),  # tampered
        ("whsec_x", body, 1_700_000_100),  # not our secret
        ("whsec_s", body, 1_700_000_301),  # replayed after the tolerance
        ("whsec_s", body, 1_699_999_699),  # from the future
    ]:
        with pytest.raises(SignatureError):
            verify_signature(secret, header, sent, now=at)
    for garbled in ["", "v1=abc", "t=1700000000", "t=soon,v1=abc", "nonsense"]:
        with pytest.raises(SignatureError):
            verify_signature("whsec_s", garbled, body, now=1_700_000_000)
    # While a secret changes, a header may carry two v1 signatures: one matching is enough.
    other = signature_header("whsec_old", body, timestamp=1_700_000_000).split(",")[1]
    assert verify_signature("whsec_s", f"{header},{other}", body, now=1_700_000_000)


def test_only_enabled_subscriptions_to_the_event_get_a_delivery(receiver, now):
    wanted = subscribe(receiver.url, ["attempt.finished", "survey.completed"])
    subscribe(receiver.url + "/other", ["campaign.completed"])
    subscribe(receiver.url + "/off", ["survey.completed"], enabled=False)
    emit("survey.completed", {"attempt_id": "a1"}, at=now)
    assert [d.subscription_id for d in WebhookDelivery.objects.all()] == [wanted.pk]


def test_with_nobody_subscribed_emit_is_one_query_and_builds_no_payload(
    django_assert_num_queries, receiver, now
):
    subscribe(receiver.url, ["campaign.completed"])

    def payload():
        raise AssertionError("built for nobody")

    with django_assert_num_queries(1):
        assert emit("attempt.finished", payload, at=now) is None
    assert not WebhookDelivery.objects.exists()
    with pytest.raises(ValueError):
        emit("attempt.exploded", {}, at=now)


def test_the_same_event_emitted_twice_is_delivered_once(receiver, now):
    subscribe(receiver.url)
    first = emit("attempt.finished", DATA, key="attempt-1", at=now)
    again = emit("attempt.finished", {**DATA, "outcome": "replayed"}, key="attempt-1", at=now)
    other = emit("attempt.finished", DATA, key="attempt-2", at=now)
    assert first == again != other
    assert WebhookDelivery.objects.count() == 2
    send_due_deliveries(now=now)
    assert sorted(r.headers["Voicesurvey-Event-Id"] for r in receiver.received) == sorted(
        [str(first), str(other)]
    )
    assert json.loads(receiver.received[0].body)["data"]["outcome"] == "busy"


def test_an_event_whose_transaction_rolls_back_is_never_sent(receiver, now):
    subscribe(receiver.url)
    with pytest.raises(RuntimeError), transaction.atomic():
        emit("attempt.finished", DATA, at=now)
        raise RuntimeError("the settlement failed")
    assert not WebhookDelivery.objects.exists()


def test_the_send_is_queued_for_django_q_once_the_event_commits(
    receiver, django_capture_on_commit_callbacks
):
    subscribe(receiver.url)
    queued = OrmQ.objects.count()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            # The task sends what is due by the clock it runs at: the event is of this moment.
            event_id = emit("attempt.finished", DATA, at=timezone.now())
            assert OrmQ.objects.count() == queued  # not before the commit
    assert len(callbacks) == 1 and OrmQ.objects.count() == queued + 1
    # What the cluster's worker then runs:
    assert send_event(str(event_id)) == 1
    assert delivery().status == "delivered" and len(receiver.received) == 1
    assert send_event(str(event_id)) == 0  # a second run (or the sweep) finds nothing to send


# --- failures, retries, giving up -----------------------------------------------------------------


def test_a_receiver_answering_500_gets_the_delivery_again_with_backoff(receiver, now, settings):
    settings.WEBHOOK_RETRY_MINUTES = [1, 5, 30]
    receiver.status = 500
    subscribe(receiver.url)
    emit("attempt.finished", DATA, at=now)

    send_due_deliveries(now=now)
    failed = delivery()
    assert (failed.status, failed.attempts, failed.last_status_code) == ("failed", 1, 500)
    assert failed.last_error == "HTTP 500: receiver says no"
    assert failed.next_attempt_at == now + MINUTE

    assert send_due_deliveries(now=now + MINUTE - dt.timedelta(seconds=1)) == 0
    assert send_due_deliveries(now=now + MINUTE) == 1
    assert delivery().next_attempt_at == now + MINUTE + 5 * MINUTE
    assert send_due_deliveries(now=now + 6 * MINUTE) == 1
    assert delivery().next_attempt_at == now + 36 * MINUTE

    receiver.status = 204
    assert send_due_deliveries(now=now + 36 * MINUTE) == 1
    sent = delivery()
    assert (sent.status, sent.attempts, sent.last_error) == ("delivered", 4, "")
    ids = {r.headers["Voicesurvey-Event-Id"] for r in receiver.received}
    assert len(receiver.received) == 4 and len(ids) == 1  # the same event each time
    assert WebhookSubscription.objects.get().consecutive_failures == 0


def test_a_delivery_is_given_up_after_its_last_retry(receiver, now, settings):
    settings.WEBHOOK_RETRY_MINUTES = [1, 2]
    receiver.status = 503
    subscribe(receiver.url)
    emit("attempt.finished", DATA, at=now)
    for at in (now, now + MINUTE, now + 3 * MINUTE):
        assert send_due_deliveries(now=at) == 1
    given_up = delivery()
    assert (given_up.status, given_up.attempts, given_up.next_attempt_at) == ("given_up", 3, None)
    assert send_due_deliveries(now=now + DAY) == 0

    # "Send again" tries it once more, now.
    receiver.status = 200
    send_again([given_up], now=now + DAY)
    assert send_due_deliveries(now=now + DAY) == 1
    assert delivery().status == "delivered" and len(receiver.received) == 4


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"status": 302, "headers": {"Location": "http://169.254.169.254/"}}, "HTTP 302"),
        ({"status": 404}, "HTTP 404"),
    ],
)
def test_a_redirect_or_a_refusal_is_a_failure_and_no_redirect_is_followed(
    receiver, now, answer, error
):
    receiver.status = answer["status"]
    receiver.headers = answer.get("headers", {})
    subscribe(receiver.url)
    emit("attempt.finished", DATA, at=now)
    send_due_deliveries(now=now)
    assert delivery().status == "failed" and delivery().last_error.startswith(error)
    assert len(receiver.received) == 1


def test_a_receiver_that_does_not_answer_in_time_is_a_failure(receiver, now, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.2
    receiver.hold = threading.Event()  # answers only when the test ends
    subscribe(receiver.url)
    emit("attempt.finished", DATA, at=now)
    send_due_deliveries(now=now)
    failed = delivery()
    assert failed.status == "failed" and "Timeout" in failed.last_error
    assert failed.last_status_code is None


def test_a_closed_port_is_a_failure(receiver, now):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    subscribe(f"http://127.0.0.1:{closed}/gone")
    emit("attempt.finished", DATA, at=now)
    send_due_deliveries(now=now)
    assert delivery().status == "failed" and "ConnectionError" in delivery().last_error


# --- disabling ------------------------------------------------------------------------------------


def test_an_endpoint_failing_for_days_is_disabled_and_enabling_it_sends_what_waits(
    receiver, now, settings
):
    settings.WEBHOOK_RETRY_MINUTES = [24 * 60] * 10
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 4
    settings.WEBHOOK_DISABLE_AFTER_HOURS = 72
    receiver.status = 500
    subscription = subscribe(receiver.url)
    emit("attempt.finished", DATA, at=now)
    for day in range(4):  # four failures, but the first only three days ago at the third
        send_due_deliveries(now=now + day * DAY)
        subscription.refresh_from_db()
        assert subscription.consecutive_failures == day + 1
        assert subscription.enabled == (day < 3)
    assert subscription.failing_since == now and subscription.disabled_at == now + 3 * DAY
    assert "4 failed sends in a row since 2026-11-23 12:00 UTC" in subscription.disabled_reason
    assert "HTTP 500" in subscription.disabled_reason

    # Disabled: new events make no deliveries, and the waiting one is not sent.
    assert emit("attempt.finished", DATA, at=now + 4 * DAY) is None
    assert send_due_deliveries(now=now + 30 * DAY) == 0 and len(receiver.received) == 4

    receiver.status = 200
    save_subscription(subscription=subscription, fields={"enabled": True})
    subscription.refresh_from_db()
    assert (subscription.consecutive_failures, subscription.disabled_reason) == (0, "")
    assert subscription.disabled_at is None and subscription.failing_since is None
    assert send_due_deliveries(now=now + 30 * DAY) == 1
    assert delivery().status == "delivered"


def test_a_success_between_failures_keeps_the_endpoint_enabled(receiver, now, settings):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 2
    settings.WEBHOOK_DISABLE_AFTER_HOURS = 0
    subscription = subscribe(receiver.url)
    for n, status in enumerate([500, 200, 500, 200]):
        receiver.status = status
        emit("attempt.finished", DATA, at=now + n * MINUTE)
        send_due_deliveries(now=now + n * MINUTE)
    subscription.refresh_from_db()
    assert subscription.enabled and subscription.consecutive_failures == 0


# --- where deliveries may go ----------------------------------------------------------------------


def test_a_name_resolving_to_a_private_address_is_refused_at_send_time(
    receiver, now, settings, monkeypatch
):
    subscribe("https://hooks.example.com/in")  # saved: a name is resolved only when sending
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False

    def resolve(host, *args, **kwargs):
        assert host == "hooks.example.com"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 0))]

    monkeypatch.setattr("hooks.addresses.socket.getaddrinfo", resolve)
    emit("attempt.finished", DATA, at=now)
    send_due_deliveries(now=now)
    assert delivery().status == "failed"
    assert delivery().last_error == "The host resolves to a private or loopback address."


def test_a_loopback_subscription_stops_working_when_private_addresses_are_refused(
    receiver, now, settings
):
    subscribe(receiver.url)
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    emit("attempt.finished", DATA, at=now)
    send_due_deliveries(now=now)
    assert delivery().status == "failed" and receiver.received == []


# --- the sweep's housekeeping ---------------------------------------------------------------------


def test_old_delivered_and_given_up_deliveries_are_pruned_waiting_ones_kept(now, settings):
    settings.WEBHOOK_KEEP_DAYS = 30
    subscription = subscribe("https://hooks.example.com/in")
    old, recent = now - 31 * DAY, now - 29 * DAY

    def make(status, at):
        return WebhookDelivery.objects.create(
            subscription=subscription,
            event_id=uuid.uuid4(),
            event_type="attempt.finished",
            payload={},
            status=status,
            created_at=at,
        ).pk

    gone = [make("delivered", old), make("given_up", old)]
    kept = [make("failed", old), make("pending", old), make("delivered", recent)]
    assert prune_deliveries(now=now, batch=1) == 2
    assert sorted(WebhookDelivery.objects.values_list("pk", flat=True)) == sorted(kept)
    assert not WebhookDelivery.objects.filter(pk__in=gone).exists()


def test_a_cluster_sweeps_every_minute_and_the_migration_is_idempotent():
    migration = importlib.import_module("hooks.migrations.0002_sender_schedule")
    migration.create_schedule(apps, None)
    schedule = Schedule.objects.get(name="webhook deliveries")
    assert import_string(schedule.func) is run_sweep
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 1, -1)


def test_the_scheduled_sweep_sends_what_is_due(receiver):
    subscribe(receiver.url)
    emit("attempt.finished", DATA)
    assert run_sweep() == 1 and delivery().status == "delivered"


def test_run_scheduler_once_sends_the_deliveries_due_after_its_tick(receiver):
    subscribe(receiver.url)
    emit("attempt.finished", DATA)
    call_command("run_scheduler", "--once", stdout=StringIO())
    assert delivery().status == "delivered" and len(receiver.received) == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_run_scheduler_sender_thread_sends_what_is_committed_and_stops_when_told(receiver):
    subscribe(receiver.url)
    # Committed (autocommit) before the thread starts: this thread then only waits, so the two
    # never write at once (SQLite's shared-cache test database refuses that at once, "database
    # table is locked", where a file database as `make run` has waits on its busy timeout).
    emit("attempt.finished", DATA)
    stop = threading.Event()
    sender = start_sender(stop, interval=0.05)
    try:
        assert receiver.arrived.wait(10)
    finally:
        stop.set()
        sender.join(10)
    assert not sender.is_alive()
    assert delivery().status == "delivered" and len(receiver.received) == 1


def test_a_subscription_deleted_while_its_delivery_is_sent_breaks_nothing(receiver, now):
    from hooks.sending import SendResult, claim_due, record_result

    subscription = subscribe(receiver.url)
    emit("attempt.finished", DATA, at=now)
    [claimed] = claim_due(now=now, limit=10)
    subscription.delete()
    assert record_result(claimed, SendResult(False, 500, "HTTP 500"), now=now) == "failed"
    assert not WebhookDelivery.objects.exists()


def test_the_hooks_app_imports_none_of_the_apps_that_call_it():
    import ast
    from pathlib import Path

    for path in Path(__file__).resolve().parent.parent.joinpath("hooks").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in getattr(node, "names", [])] if isinstance(node, ast.Import) else []
            )
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"calls", "contacts", "campaigns"}, path
