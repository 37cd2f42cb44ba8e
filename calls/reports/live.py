"""The wallboard's live figures: why contacts are waiting, the calls live now, the calls of the
last hour, the dialler's health, and the words an operator reads for each.

Each function is one aggregate query for all the campaigns on screen (never one per campaign
or per row); Python only sorts the few groups that come back. The dashboard page and its JSON
view (`calls.admin`) both read them, so the numbers the page shows on load and those it
refreshes in place are the same figures."""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from calls.dialler.claim import CALLABLE_SQL, ZONE_KEYS_SQL
from calls.models import CallAttempt, DiallerHeartbeat
from campaigns.models import Campaign
from campaigns.windows import open_zone_keys
from contacts.models import Contact
from voicesurvey.times import duration_text

LIVE_LIST_LENGTH = 20  # the longest-running live calls listed; the count covers them all


@dataclass
class Waiting:
    """A campaign's callable contacts (pending or not reached) by why they are not being
    called at this moment."""

    due_now: int = 0  # due, window open: called as lines free up
    for_window: int = 0  # due, but the calling window is closed where they live
    for_retry: int = 0  # their retry delay (or the call back they asked for) has not passed


def waiting_contacts(
    campaigns: list[Campaign], *, callable_counts: dict[int, int], now: dt.datetime
) -> dict[int, Waiting]:
    """Per campaign, its callable contacts split by why they wait, in one query, given how
    many callable (pending or not reached) contacts each has (`callable_counts`, from the
    count by state). Only the due ones are read: per campaign and zone set, a count of an
    ordered range of contact_claim_idx (on PostgreSQL the zone sets are found by the tick's
    skip scan, ZONE_KEYS_SQL), so contacts waiting for a retry cost nothing; they are the
    callable ones that are not due. Whether a zone set's window is open is worked out in
    Python for the few distinct sets, as the tick does (`campaigns.windows.open_zone_keys`)."""
    due = due_contacts_by_zone_key([c.pk for c in campaigns], now=now)
    waiting = {}
    for campaign in campaigns:
        keys = due.get(campaign.pk, {})
        open_keys = set(open_zone_keys(campaign, list(keys), now=now))
        here = Waiting()
        for key, n in keys.items():
            if key in open_keys:
                here.due_now += n
            else:
                here.for_window += n
        here.for_retry = max(
            0, callable_counts.get(campaign.pk, 0) - here.due_now - here.for_window
        )
        waiting[campaign.pk] = here
    return waiting


# The due callable contacts of each campaign per zone key: the tick's skip scan lists a
# campaign's zone keys, then each key's due contacts are one ordered range of contact_claim_idx.
DUE_BY_KEY_SQL = """
    SELECT w.id, k.zkey,
           (SELECT count(*) FROM {contacts} c
             WHERE c.campaign_id = w.id AND c.{callable} AND c.timezone_key = k.zkey
               AND c.next_attempt_at <= %s) AS due
      FROM unnest(%s::bigint[]) AS w(id), LATERAL ({zone_keys}) k
"""


def due_contacts_by_zone_key(campaign_ids: list[int], *, now: dt.datetime) -> dict[int, dict]:
    """{campaign id: {zone key: callable contacts due at `now`}}, zero counts left out."""
    if not campaign_ids:
        return {}
    due: dict[int, dict[str, int]] = {}
    if connection.vendor == "postgresql":
        contacts = connection.ops.quote_name(Contact._meta.db_table)
        zone_keys = ZONE_KEYS_SQL.format(contacts=contacts, campaign="w.id", callable=CALLABLE_SQL)
        sql = DUE_BY_KEY_SQL.format(contacts=contacts, callable=CALLABLE_SQL, zone_keys=zone_keys)
        with connection.cursor() as cursor:
            cursor.execute(sql, [now, list(campaign_ids)])
            rows = cursor.fetchall()
    else:  # SQLite: a plain GROUP BY over the due contacts
        rows = (
            Contact.objects.filter(
                campaign_id__in=campaign_ids,
                state__in=Contact.CALLABLE_STATES,
                next_attempt_at__lte=now,
            )
            .values_list("campaign_id", "timezone_key")
            .annotate(n=Count("*"))
            .order_by()
        )
    for campaign_id, key, n in rows:
        if n:
            due.setdefault(campaign_id, {})[key] = n
    return due


def calls_since(campaign_ids: list[int], since: dt.datetime, *, until: dt.datetime) -> dict:
    """Calls placed (attempts created) per campaign after `since`, up to `until`: a short
    range of attempt_dashboard_idx."""
    rows = (
        CallAttempt.objects.filter(
            campaign_id__in=campaign_ids, created_at__gt=since, created_at__lte=until
        )
        .values("campaign_id")
        .annotate(n=Count("*"))
        .order_by()
    )
    return {row["campaign_id"]: row["n"] for row in rows}


@dataclass
class LiveCall:
    call_id: str
    campaign_id: int
    contact_id: int
    contact_name: str
    status: str
    answered: bool
    seconds: int  # since the call was dialled (queued calls: since they were claimed)


def live_calls(campaign_ids: list[int], *, now: dt.datetime) -> list[LiveCall]:
    """The calls live now, longest first (at most LIVE_LIST_LENGTH): the partial
    attempt_live_idx, read in created_at order."""
    rows = (
        CallAttempt.objects.filter(
            campaign_id__in=campaign_ids, status__in=CallAttempt.LIVE_STATUSES
        )
        .order_by("created_at")
        .values(
            "call_id",
            "campaign_id",
            "contact_id",
            "contact__name",
            "status",
            "created_at",
            "dialled_at",
            "answered_at",
        )[:LIVE_LIST_LENGTH]
    )
    return [
        LiveCall(
            call_id=row["call_id"],
            campaign_id=row["campaign_id"],
            contact_id=row["contact_id"],
            contact_name=row["contact__name"],
            status=row["status"],
            answered=row["answered_at"] is not None,
            seconds=max(0, int((now - (row["dialled_at"] or row["created_at"])).total_seconds())),
        )
        for row in rows
    ]


def finish_estimate(to_do: int, calls_last_hour: int) -> dt.timedelta | None:
    """Calling time left at the last hour's pace: each contact still to do needs at least one
    more call, so this is the soonest the list can be through (retries come on top, and so do
    the hours the calling window is closed). None when nothing was called in the last hour."""
    if to_do == 0:
        return dt.timedelta(0)
    if calls_last_hour == 0:
        return None
    return dt.timedelta(hours=to_do / calls_last_hour)


# --- words -------------------------------------------------------------------------------------


def estimate_text(estimate: dt.timedelta | None) -> str:
    if estimate is None:
        return _("no calls in the last hour")
    if not estimate:
        return _("nothing left to call")
    minutes = max(1, round(estimate.total_seconds() / 60))
    if minutes >= 60:  # whole minutes: no seconds to show
        return _("about %(duration)s") % {"duration": duration_text(minutes * 60)}
    return _("about %(m)d min") % {"m": minutes}


def tick_summary(report: dict) -> str:
    """One sentence an operator reads: what the last tick did."""
    if not isinstance(report, dict):
        return _("No report.")
    dialled = int(report.get("dialled") or 0)
    done = [ngettext("%(n)d call placed", "%(n)d calls placed", dialled) % {"n": dialled}]
    if failed := int(report.get("failed") or 0):
        done.append(_("%(n)d failed at the provider") % {"n": failed})
    if recovered := int(report.get("recovered") or 0):
        done.append(
            ngettext("%(n)d lost call closed", "%(n)d lost calls closed", recovered)
            % {"n": recovered}
        )
    if reconciled := int(report.get("reconciled") or 0):
        done.append(
            ngettext(
                "%(n)d call settled by asking the provider",
                "%(n)d calls settled by asking the provider",
                reconciled,
            )
            % {"n": reconciled}
        )
    if started := len(report.get("started") or ()):
        done.append(
            ngettext("%(n)d campaign started", "%(n)d campaigns started", started) % {"n": started}
        )
    if completed := len(report.get("completed") or ()):
        done.append(
            ngettext("%(n)d campaign completed", "%(n)d campaigns completed", completed)
            % {"n": completed}
        )
    if errors := len(report.get("errors") or ()):
        done.append(ngettext("%(n)d error", "%(n)d errors", errors) % {"n": errors})
    return _("%(parts)s.") % {"parts": ", ".join(done)}


@dataclass
class Health:
    ok: bool
    text: str


def heartbeat_is_stale(beat: DiallerHeartbeat | None, now: dt.datetime) -> bool:
    """The same limit as /healthz: no tick for six intervals (at least a minute)."""
    limit = dt.timedelta(seconds=max(60, 6 * settings.DIALLER_TICK_INTERVAL))
    return beat is None or now - beat.last_tick_at > limit


def dialler_health(beat: DiallerHeartbeat | None, now: dt.datetime) -> Health:
    """The dialler's state in one sentence: "Ticking: last tick 3 s ago, 12 calls placed." or
    a warning saying what to check."""
    if beat is None:
        return Health(
            ok=False,
            text=_(
                "Not ticking: the dialler has never ticked. "
                "Start manage.py run_scheduler (or qcluster)."
            ),
        )
    ago = duration_text((now - beat.last_tick_at).total_seconds())
    if heartbeat_is_stale(beat, now):
        return Health(
            ok=False,
            text=_(
                "Not ticking: the last tick was %(ago)s ago. "
                "Is manage.py run_scheduler (or qcluster) running?"
            )
            % {"ago": ago},
        )
    return Health(
        ok=True,
        text=_("Ticking: last tick %(ago)s ago, %(summary)s")
        % {"ago": ago, "summary": tick_summary(beat.report)},
    )
