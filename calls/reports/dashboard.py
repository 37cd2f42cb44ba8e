"""The figures behind the operator's dashboard and the per-campaign results page.

Everything is aggregated in SQL (`values().annotate()`, hour buckets, window functions), and
the number of queries is fixed: one per kind of figure for all the campaigns shown at once,
never one per campaign or per row. Python only labels the aggregated groups (a few thousand at
most). The dashboard's cost follows the contacts and attempts of the campaigns on screen, each
query served by an index (see `bench/bench_dashboard.py` and the README's figures).
"""

import datetime as dt
import functools
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.db.models.functions import TruncHour

from calls.models import Answer, CallAttempt, DiallerHeartbeat
from campaigns.models import Campaign, Question
from contacts.models import Contact

ON_SCREEN_STATUSES = (Campaign.Status.RUNNING, Campaign.Status.PAUSED)
HOURS = 24
TOP_ANSWERS = 10  # free-text (speech) and keypad questions show their most frequent answers

# The outcomes of `calls.reports.stats` (finished attempts) in the order the dashboard lists them.
OUTCOMES = [
    ("completed", "Completed survey", "#2e7d32"),
    ("incomplete", "Answered, not finished", "#9ccc65"),
    ("callback", "Asked for a call back", "#26a69a"),
    ("refused", "Opted out", "#c62828"),
    ("machine", "Answering machine", "#8d6e63"),
    ("busy", "Busy", "#ffb300"),
    ("no_answer", "No answer", "#fb8c00"),
    ("failed", "Failed", "#757575"),
    ("rejected", "Number rejected", "#6a1b9a"),
    ("provider_unavailable", "Provider unavailable", "#455a64"),
    ("lost", "Lost (recovered)", "#37474f"),
]
OUTCOME_LABELS = {key: label for key, label, _ in OUTCOMES} | {"in_progress": "Live"}
# What an attempt's outcome depends on (see CallAttempt.outcome), besides whether a call back
# was asked for.
OUTCOME_FIELDS = ("status", "answered_by", "survey_finished", "opted_out", "error_code")

STATE_COLOURS = {
    Contact.State.PENDING: "#90a4ae",
    Contact.State.IN_PROGRESS: "#42a5f5",
    Contact.State.NOT_REACHED: "#ffb300",
    Contact.State.COMPLETED: "#2e7d32",
    Contact.State.REFUSED: "#c62828",
    Contact.State.EXCLUDED: "#424242",
    Contact.State.EXHAUSTED: "#8d6e63",
    Contact.State.INVALID: "#6a1b9a",
}


class HourStart(TruncHour):
    """The start of the UTC hour of a timestamp. On PostgreSQL `date_bin` on the timestamptz
    itself: no conversion to a zone for each of the day's rows, which made TruncHour's
    `date_trunc('hour', created_at AT TIME ZONE 'UTC')` a third of the dashboard's biggest
    query. Elsewhere, TruncHour in UTC."""

    def __init__(self, expression):
        super().__init__(expression, tzinfo=dt.UTC)

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.lhs)
        return f"date_bin('1 hour', {sql}, TIMESTAMPTZ '2000-01-01 00:00:00+00')", params


def is_set(field_name: str) -> ExpressionWrapper:
    return ExpressionWrapper(Q(**{f"{field_name}__isnull": False}), output_field=BooleanField())


@functools.cache
def outcome_of(
    status: str,
    answered_by: str,
    survey_finished: bool,
    opted_out: bool,
    error_code: str,
    has_callback: bool,
) -> str:
    """The outcome of the attempts with these columns: the model's own rule, `in_progress`
    for a live attempt (as in `calls.reports.stats`). The property only asks whether a call back was
    requested, so any time stands for "yes"."""
    attempt = CallAttempt(
        status=status,
        answered_by=answered_by,
        survey_finished=survey_finished,
        opted_out=opted_out,
        error_code=error_code,
        callback_requested_for=dt.datetime.min if has_callback else None,
    )
    return "in_progress" if attempt.is_live else attempt.outcome


def is_answered(status: str, answered_by: str, has_answered_at: bool) -> bool:
    """`calls.reports.stats`' definition of a call a person picked up: it reached `completed`
    or has an answer time, and no answering machine took it."""
    return (
        status == CallAttempt.Status.COMPLETED or has_answered_at
    ) and answered_by != CallAttempt.AnsweredBy.MACHINE


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class CampaignPanel:
    """One campaign's figures on the dashboard. Contact figures cover the whole campaign;
    attempt figures the last 24 hours (all-time attempt figures would cost a scan of every
    attempt the campaign ever made on each refresh; the results page has them)."""

    campaign: Campaign
    states: dict[str, int] = field(default_factory=dict)  # contacts by state
    hourly: list[tuple[dt.datetime, int]] = field(default_factory=list)  # attempts per hour
    outcomes: dict[str, int] = field(default_factory=dict)  # finished attempts by outcome
    reached_provider_24h: int = 0
    answered_24h: int = 0
    live_calls: int = 0

    @property
    def contacts_total(self) -> int:
        return sum(self.states.values())

    @property
    def contacts_done(self) -> int:
        return sum(self.states.get(s, 0) for s in Contact.FINAL_STATES)

    @property
    def contacts_completed(self) -> int:
        return self.states.get(Contact.State.COMPLETED, 0)

    @property
    def attempts_24h(self) -> int:
        return sum(n for _, n in self.hourly)

    @property
    def answer_rate(self) -> float | None:
        """Answered by a person / calls the provider accepted, last 24 h (`calls.reports.stats`)."""
        return rate(self.answered_24h, self.reached_provider_24h)

    @property
    def completion_rate(self) -> float | None:
        """Completed contacts / contacts the campaign may call (`calls.reports.stats`)."""
        return rate(
            self.contacts_completed,
            self.contacts_total - self.states.get(Contact.State.EXCLUDED, 0),
        )

    @property
    def progress(self) -> float | None:
        """Contacts the campaign is done with / all its contacts."""
        return rate(self.contacts_done, self.contacts_total)


@dataclass
class Dashboard:
    now: dt.datetime
    since: dt.datetime
    panels: list[CampaignPanel]
    heartbeat: DiallerHeartbeat | None

    @property
    def live_calls(self) -> int:
        return sum(p.live_calls for p in self.panels)


def hour_slots(now: dt.datetime) -> list[dt.datetime]:
    """The starts of the last 24 hours (UTC), the current one last."""
    current = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return [current - dt.timedelta(hours=h) for h in range(HOURS - 1, -1, -1)]


def build_dashboard(*, now: dt.datetime) -> Dashboard:
    """The dashboard's figures for every running or paused campaign, in five queries whatever
    the number of campaigns, contacts and attempts."""
    slots = hour_slots(now)
    since = slots[0]
    campaigns = Campaign.objects.filter(status__in=ON_SCREEN_STATUSES).order_by(
        "status", "name", "pk"
    )
    panels = {c.pk: CampaignPanel(campaign=c) for c in campaigns}
    ids = list(panels)
    hourly = {pk: dict.fromkeys(slots, 0) for pk in ids}

    # 1. Contacts by state: a GROUP BY served by contact_campaign_state_idx.
    for row in (
        Contact.objects.filter(campaign_id__in=ids)
        .values("campaign_id", "state")
        .annotate(n=Count("*"))
        .order_by()
    ):
        panels[row["campaign_id"]].states[row["state"]] = row["n"]

    # 2. The day's attempts, grouped in SQL by hour and by the columns their outcome depends
    #    on: a few thousand groups at most, an index-only scan of attempt_dashboard_idx. Each
    #    group's outcome is then the model's own rule, worked out once per combination of
    #    columns. Half the database time of evaluating the outcome CASE and the rate filters
    #    on each of the day's rows (200,000 of them in the benchmark).
    for row in (
        CallAttempt.objects.filter(campaign_id__in=ids, created_at__gte=since)
        .annotate(
            hour=HourStart("created_at"),
            has_callback=is_set("callback_requested_for"),
            was_dialled=is_set("dialled_at"),
            was_answered=is_set("answered_at"),
        )
        .values(
            "campaign_id", "hour", *OUTCOME_FIELDS, "has_callback", "was_dialled", "was_answered"
        )
        .annotate(n=Count("*"))
        .order_by()
    ):
        pk, n = row["campaign_id"], row["n"]
        panel = panels[pk]
        if row["hour"] in hourly[pk]:  # an attempt stamped in the future stays off the chart
            hourly[pk][row["hour"]] += n
        outcome = outcome_of(*(row[f] for f in OUTCOME_FIELDS), row["has_callback"])
        if outcome != "in_progress":
            panel.outcomes[outcome] = panel.outcomes.get(outcome, 0) + n
        if row["was_dialled"]:
            panel.reached_provider_24h += n
        if is_answered(row["status"], row["answered_by"], row["was_answered"]):
            panel.answered_24h += n
    for pk, counts in hourly.items():
        panels[pk].hourly = list(counts.items())

    # 3. Live calls now, whatever their age: the partial attempt_live_idx.
    for row in (
        CallAttempt.objects.filter(campaign_id__in=ids, status__in=CallAttempt.LIVE_STATUSES)
        .values("campaign_id")
        .annotate(n=Count("*"))
        .order_by()
    ):
        panels[row["campaign_id"]].live_calls = row["n"]

    # 4. The last tick (the campaigns themselves were query 0).
    heartbeat = DiallerHeartbeat.objects.filter(pk=1).first()
    return Dashboard(now=now, since=since, panels=list(panels.values()), heartbeat=heartbeat)


@dataclass
class QuestionResults:
    question: Question
    answers: list[tuple[str, int]]  # (value, count), most frequent first (scales: in order)
    total: int  # every answer to the question, also those past the top shown
    truncated: bool  # more distinct values than shown


def question_results(campaign: Campaign) -> list[QuestionResults]:
    """The answer distribution of each question of `campaign`, in two queries: the questions,
    then per question and value the count, ranked in SQL so that only the most frequent values
    come back (free-text answers never flood the page), with each question's total beside."""
    questions = list(campaign.questions.order_by("position"))
    limit = max([TOP_ANSWERS] + [_scale_size(q) for q in questions])
    counts: dict[int, list[tuple[str, int]]] = {q.pk: [] for q in questions}
    totals: dict[int, int] = {}
    # Raw SQL because the ORM puts a window over an aggregate into the GROUP BY (an error);
    # ROW_NUMBER() over a grouped query runs on SQLite (3.25+) and PostgreSQL alike.
    sql = f"""
        SELECT question_id, value, n, total FROM (
            SELECT a.question_id, a.value, COUNT(*) AS n,
                   ROW_NUMBER() OVER (
                       PARTITION BY a.question_id ORDER BY COUNT(*) DESC, a.value
                   ) AS answer_rank,
                   SUM(COUNT(*)) OVER (PARTITION BY a.question_id) AS total
            FROM {Answer._meta.db_table} a
            JOIN {Question._meta.db_table} q ON q.id = a.question_id
            WHERE q.campaign_id = %s
            GROUP BY a.question_id, a.value
        ) ranked
        WHERE answer_rank <= %s
        ORDER BY question_id, answer_rank
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign.pk, limit])
        for question_id, value, n, total in cursor.fetchall():
            counts[question_id].append((value, n))
            totals[question_id] = int(total)
    results = []
    for q in questions:
        answers = counts[q.pk]
        if q.kind == Question.Kind.SCALE and _scale_size(q):
            found = dict(answers)
            answers = [(str(v), found.pop(str(v), 0)) for v in range(q.min_value, q.max_value + 1)]
            answers += sorted(found.items(), key=lambda kv: -kv[1])  # off-scale stragglers
        elif q.kind == Question.Kind.YES_NO:
            found = dict(answers)
            answers = [("yes", found.pop("yes", 0)), ("no", found.pop("no", 0))]
            answers += sorted(found.items(), key=lambda kv: -kv[1])
        else:
            answers = answers[:TOP_ANSWERS]
        total = totals.get(q.pk, 0)
        results.append(
            QuestionResults(
                question=q,
                answers=answers,
                total=total,
                truncated=sum(n for _, n in answers) < total,
            )
        )
    return results


def _scale_size(question: Question) -> int:
    """How many values a scale question has, when few enough to chart each (else 0)."""
    if question.kind != Question.Kind.SCALE or question.min_value is None:
        return 0
    size = question.max_value - question.min_value + 1
    return size if size <= 30 else 0


# Why a campaign or a booked call got no call in a tick (calls.dialler.claim,
# calls.booking.scheduling), in the operator's words.
SKIP_REASONS = {
    "window_closed": "calling window closed",
    "no_callable_contacts": "no contact due now",
    "campaign_cap": "campaign at its concurrent-call cap",
    "global_cap": "global concurrent-call cap reached",
    "at_cap": "filled up to a concurrent-call cap (fewer calls than the pace allowed)",
    "paced_or_capped": "held back by the calls-per-second pace",
    "no_provider": "no telephony provider",
    "booked_missed": "booked call missed (past its grace)",
    "booked_do_not_call": "booked call to a do-not-call number",
    "booked_campaign_not_running": "booked call's campaign not running",
    "booked_outside_legal_window": "booked call outside the legal hours",
    "booked_no_capacity": "booked call waiting for a free line",
    "booked_contact_busy": "booked call waiting: the person is on a call",
}


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def tick_summary(report: dict) -> str:
    """One sentence an operator reads: what the last tick did."""
    if not isinstance(report, dict):
        return "No report."
    done = [plural(int(report.get("dialled") or 0), "call") + " placed"]
    if failed := int(report.get("failed") or 0):
        done.append(f"{failed} failed at the provider")
    if recovered := int(report.get("recovered") or 0):
        done.append(plural(recovered, "lost call") + " closed")
    if reconciled := int(report.get("reconciled") or 0):
        done.append(plural(reconciled, "call") + " settled by asking the provider")
    if started := report.get("started"):
        done.append(plural(len(started), "campaign") + " started")
    if completed := report.get("completed"):
        done.append(plural(len(completed), "campaign") + " completed")
    if errors := report.get("errors"):
        done.append(plural(len(errors), "error"))
    return ", ".join(done) + "."


def tick_details(report: dict) -> list[tuple[str, str]]:
    """The last tick's report as labelled, plain-text rows (no Python or JSON notation)."""
    if not isinstance(report, dict):
        return []
    names = dict(
        Campaign.objects.filter(
            pk__in=[*report.get("started", []), *report.get("completed", [])]
        ).values_list("pk", "name")
    )

    def campaigns(ids) -> str:
        return ", ".join(names.get(pk, f"#{pk}") for pk in ids) or "none"

    skipped = report.get("skipped") or {}
    return [
        ("Contacts claimed", str(report.get("claimed", 0))),
        ("Live calls after the claim", str(report.get("live_calls", 0))),
        ("Calls placed", str(report.get("dialled", 0))),
        ("Failed at the provider", str(report.get("failed", 0))),
        ("Released after a provider outage", str(report.get("released", 0))),
        ("Lost calls closed (recovery)", str(report.get("recovered", 0))),
        (
            "Quiet calls asked about at the provider",
            f"{report.get('checked', 0)}, of which {report.get('reconciled', 0)} had ended",
        ),
        ("Campaigns started", campaigns(report.get("started", []))),
        ("Campaigns completed", campaigns(report.get("completed", []))),
        (
            "Not called, and why",
            "; ".join(
                f"{SKIP_REASONS.get(reason, reason.replace('_', ' '))}: {n}"
                for reason, n in sorted(skipped.items())
            )
            or "nothing held back",
        ),
        ("Errors", "; ".join(report.get("errors") or []) or "none"),
        ("Took", f"{float(report.get('seconds') or 0):.3f} s"),
    ]
