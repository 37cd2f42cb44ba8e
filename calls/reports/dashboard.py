"""The figures behind the operator's dashboard and the per-campaign results page.

Everything is aggregated in SQL (`values().annotate()`, hour buckets, window functions), and
the number of queries is fixed: one per kind of figure for all the campaigns shown at once,
never one per campaign or per row. Python only labels the aggregated groups (a few thousand at
most). The dashboard's cost follows the contacts and attempts of the campaigns on screen, each
query served by an index (see `bench/bench_dashboard.py` and docs/benchmarks.md).
"""

import datetime as dt
import functools
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.db.models.functions import TruncHour
from django.utils.translation import gettext_lazy as _

from calls.models import Answer, CallAttempt, DiallerHeartbeat
from calls.reports.live import (
    Health,
    LiveCall,
    Waiting,
    calls_since,
    dialler_health,
    estimate_text,
    finish_estimate,
    live_calls,
    waiting_contacts,
)
from calls.reports.stats import FAILED_STATES, PENDING_STATES
from campaigns.models import Campaign, Question
from contacts.models import Contact
from contacts.tallies import counts_by_campaign

ON_SCREEN_STATUSES = (Campaign.Status.RUNNING, Campaign.Status.PAUSED)
HOURS = 24
TOP_ANSWERS = 10  # free-text (speech) and keypad questions show their most frequent answers

# The outcomes of `calls.reports.stats` (finished attempts) in the order the dashboard lists them.
OUTCOMES = [
    ("completed", _("Completed survey"), "#2e7d32"),
    ("incomplete", _("Answered, not finished"), "#9ccc65"),
    ("callback", _("Asked for a call back"), "#26a69a"),
    ("refused", _("Opted out"), "#c62828"),
    ("machine", _("Answering machine"), "#8d6e63"),
    ("busy", _("Busy"), "#ffb300"),
    ("no_answer", _("No answer"), "#fb8c00"),
    ("failed", _("Failed"), "#757575"),
    ("rejected", _("Number rejected"), "#6a1b9a"),
    ("provider_unavailable", _("Provider unavailable"), "#455a64"),
    ("lost", _("Lost (recovered)"), "#37474f"),
    ("stopped", _("Not dialled (campaign stopped)"), "#b0bec5"),
]
OUTCOME_LABELS = {key: label for key, label, _ in OUTCOMES} | {"in_progress": _("Live")}
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


def percent(value: float | None) -> str:
    """0.4567 -> '45.7%'; None (nothing to divide by) -> '–'."""
    return "–" if value is None else f"{100 * value:.1f}%"


# The control buttons of a campaign (action, label, whether it is the dangerous one); the
# JSON view lists the actions the campaign's status allows, for the page to show those.
CONTROL_BUTTONS = [
    ("start", _("Start calling"), False),
    ("pause", _("Pause"), False),
    ("resume", _("Resume"), False),
    ("cancel", _("Cancel campaign…"), True),
]
CONTROL_ACTIONS = tuple(action for action, _label, _danger in CONTROL_BUTTONS)


def allowed_actions(campaign: Campaign) -> list[str]:
    return [action for action in CONTROL_ACTIONS if campaign.can(action)]


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
    calls_last_hour: int = 0  # attempts created in the last 60 minutes
    live_calls: int = 0
    waiting: Waiting = field(default_factory=Waiting)
    has_day: bool = False  # the last 24 hours' figures were counted (add_day_figures)

    @property
    def contacts_total(self) -> int:
        return sum(self.states.values())

    @property
    def contacts_callable(self) -> int:
        """Every contact but the excluded ones (`calls.reports.stats`)."""
        return self.contacts_total - self.states.get(Contact.State.EXCLUDED, 0)

    @property
    def contacts_done(self) -> int:
        """Completed + failed: the campaign is finished with them (`calls.reports.stats`)."""
        return sum(self.states.get(s, 0) for s in (Contact.State.COMPLETED, *FAILED_STATES))

    @property
    def contacts_to_do(self) -> int:
        """Pending, being called or not reached yet: stats' `pending`."""
        return sum(self.states.get(s, 0) for s in PENDING_STATES)

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
        """Completed contacts / callable contacts (`calls.reports.stats`)."""
        return rate(self.contacts_completed, self.contacts_callable)

    @property
    def progress(self) -> float | None:
        """Done / callable contacts."""
        return rate(self.contacts_done, self.contacts_callable)

    @property
    def finish_estimate(self) -> dt.timedelta | None:
        return finish_estimate(self.contacts_to_do, self.calls_last_hour)

    @property
    def allowed_actions(self) -> list[str]:
        return allowed_actions(self.campaign)

    @property
    def figures(self) -> dict[str, str]:
        """The panel's numbers as the operator reads them, keyed by the name the page's
        elements carry (`data-live`): the page shows them, the JSON view sends them again."""
        c = self.campaign
        return {
            "status": c.get_status_display(),
            "done": f"{self.contacts_done:,} / {self.contacts_callable:,}",
            "progress": percent(self.progress),
            "live_calls": f"{self.live_calls:,} / {c.max_concurrent_calls:,}",
            "calls_last_hour": f"{self.calls_last_hour:,}",
            "estimate": (
                "paused"
                if c.status == Campaign.Status.PAUSED
                else estimate_text(self.finish_estimate)
            ),
            "due_now": f"{self.waiting.due_now:,}",
            "waiting_window": f"{self.waiting.for_window:,}",
            "waiting_retry": f"{self.waiting.for_retry:,}",
            "completed": f"{self.contacts_completed:,}",
            "completion_rate": percent(self.completion_rate),
        } | (
            {"calls_24h": f"{self.attempts_24h:,}", "answer_rate": percent(self.answer_rate)}
            if self.has_day
            else {}
        )


@dataclass
class Dashboard:
    now: dt.datetime
    since: dt.datetime
    panels: list[CampaignPanel]
    heartbeat: DiallerHeartbeat | None
    live: list[LiveCall] = field(default_factory=list)  # the longest-running live calls

    @property
    def live_calls(self) -> int:
        return sum(p.live_calls for p in self.panels)

    @property
    def health(self) -> Health:
        return dialler_health(self.heartbeat, self.now)


def hour_slots(now: dt.datetime) -> list[dt.datetime]:
    """The starts of the last 24 hours (UTC), the current one last."""
    current = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return [current - dt.timedelta(hours=h) for h in range(HOURS - 1, -1, -1)]


def add_day_figures(
    panels: dict[int, CampaignPanel], *, slots: list[dt.datetime], now: dt.datetime
) -> None:
    """The last 24 hours' attempt figures of each panel: attempts per hour, outcomes and the
    answer rate's parts, in one query."""
    ids, since = list(panels), slots[0]
    hourly = {pk: dict.fromkeys(slots, 0) for pk in ids}
    # The day's attempts, grouped in SQL by hour and by the columns their outcome depends on:
    # a few thousand groups at most, an index-only scan of attempt_dashboard_idx. Each
    # group's outcome is then the model's own rule, worked out once per combination of
    # columns. Half the database time of evaluating the outcome CASE and the rate filters on
    # each of the day's rows (200,000 of them in the benchmark).
    for row in (
        CallAttempt.objects.filter(campaign_id__in=ids, created_at__gte=since)
        .annotate(
            hour=HourStart("created_at"),
            has_callback=is_set("callback_requested_for"),
            was_dialled=is_set("dialled_at"),
            was_answered=is_set("answered_at"),
        )
        .values(
            "campaign_id",
            "hour",
            *OUTCOME_FIELDS,
            "has_callback",
            "was_dialled",
            "was_answered",
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
        panels[pk].has_day = True


def build_dashboard(*, now: dt.datetime, with_day: bool = True) -> Dashboard:
    """The dashboard's figures for every running or paused campaign, in eight queries whatever
    the number of campaigns, contacts and attempts. Without `with_day`, the figures that
    change from one second to the next only: no attempts per hour, outcomes or answer rate
    of the last 24 hours (a range of the day's attempts, the dearest query but one), only the
    last hour's count of calls; this is what the page's script refreshes."""
    slots = hour_slots(now)
    since = slots[0]
    campaigns = Campaign.objects.filter(status__in=ON_SCREEN_STATUSES).order_by(
        "status", "name", "pk"
    )
    panels = {c.pk: CampaignPanel(campaign=c) for c in campaigns}
    ids = list(panels)

    # 1. Contacts by state: the contact tallies, a few rows per campaign (contacts.tallies).
    for pk, states in counts_by_campaign(ids).items():
        panels[pk].states.update(states)

    # 2. The day's attempts (not for the page's script: see above), 3. the last 60 minutes'
    #    (a short range of attempt_dashboard_idx; counting them in the day's query, by one
    #    more column to group by, cost more than this query).
    if with_day:
        add_day_figures(panels, slots=slots, now=now)
    for pk, n in calls_since(ids, now - dt.timedelta(hours=1), until=now).items():
        panels[pk].calls_last_hour = n

    # 4. Live calls now, whatever their age: the partial attempt_live_idx.
    for row in (
        CallAttempt.objects.filter(campaign_id__in=ids, status__in=CallAttempt.LIVE_STATUSES)
        .values("campaign_id")
        .annotate(n=Count("*"))
        .order_by()
    ):
        panels[row["campaign_id"]].live_calls = row["n"]

    # 5. Why the callable contacts wait: the due ones counted on contact_claim_idx, the others
    #    are the callable ones left (calls.reports.live).
    shown = [panel.campaign for panel in panels.values()]
    callable_counts = {
        pk: sum(panel.states.get(s, 0) for s in Contact.CALLABLE_STATES)
        for pk, panel in panels.items()
    }
    for pk, waiting in waiting_contacts(shown, callable_counts=callable_counts, now=now).items():
        panels[pk].waiting = waiting

    # 6. The longest-running live calls (attempt_live_idx), 7. the last tick (the campaigns
    #    themselves were query 0).
    live = live_calls(ids, now=now)
    heartbeat = DiallerHeartbeat.objects.filter(pk=1).first()
    return Dashboard(
        now=now, since=since, panels=list(panels.values()), heartbeat=heartbeat, live=live
    )


@dataclass
class QuestionResults:
    question: Question
    # (value, count): a scale's points, yes and no, or a keypad question's listed answers in
    # the question's order (unanswered ones too), then any other value most frequent first.
    answers: list[tuple[str, int]]
    total: int  # every answer to the question, also those past the top shown
    truncated: bool  # more distinct values than shown
    meanings: dict[str, str] = field(default_factory=dict)  # "1" -> "basic", from the prompt

    @property
    def labelled(self) -> list[tuple[str, int]]:
        """The answers with their meaning where the question gives one: "1 — basic"."""
        return [
            (f"{value} — {self.meanings[value]}" if value in self.meanings else value, n)
            for value, n in self.answers
        ]


def question_results(campaign: Campaign) -> list[QuestionResults]:
    """The answer distribution of each question of `campaign`, in two queries: the questions,
    then per question and value the count, ranked in SQL so that only the most frequent values
    come back (free-text answers never flood the page), with each question's total beside."""
    questions = list(campaign.questions.order_by("position"))
    # Room for every point of a scale or listed keypad answer, and the most frequent others.
    limit = TOP_ANSWERS + max(
        [0] + [max(_scale_size(q), len(_listed_answers(q))) for q in questions]
    )
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
        elif q.kind == Question.Kind.DIGITS and _listed_answers(q):
            found = dict(answers)
            answers = [(value, found.pop(value, 0)) for value in _listed_answers(q)]
            answers += sorted(found.items(), key=lambda kv: -kv[1])
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
                meanings=q.answer_meanings(),
            )
        )
    return results


def _listed_answers(question: Question) -> list[str]:
    """A keypad question's answers in its own order, when few enough to chart each: those it
    accepts, or else those its prompt gives a meaning ("Press 1 for yes, 2 for no")."""
    if question.kind != Question.Kind.DIGITS:
        return []
    listed = question.valid_answers if isinstance(question.valid_answers, list) else []
    listed = list(dict.fromkeys(a for a in listed if isinstance(a, str)))
    listed = listed or list(question.answer_meanings())
    return listed if len(listed) <= 30 else []


def _scale_size(question: Question) -> int:
    """How many values a scale question has, when few enough to chart each (else 0)."""
    if question.kind != Question.Kind.SCALE or question.min_value is None:
        return 0
    size = question.max_value - question.min_value + 1
    return size if size <= 30 else 0


# Why a campaign or a booked call got no call in a tick (calls.dialler.claim,
# calls.booking.scheduling), in the operator's words.
SKIP_REASONS = {
    "window_closed": _("calling window closed"),
    "no_callable_contacts": _("no contact due now"),
    "campaign_cap": _("campaign at its concurrent-call cap"),
    "global_cap": _("global concurrent-call cap reached"),
    "at_cap": _("filled up to a concurrent-call cap (fewer calls than the pace allowed)"),
    "paced_or_capped": _("held back by the calls-per-second pace"),
    "no_provider": _("no telephony provider"),
    "booked_missed": _("booked call missed (past its grace)"),
    "booked_do_not_call": _("booked call to a do-not-call number"),
    "booked_campaign_not_running": _("booked call's campaign not running"),
    "booked_outside_legal_window": _("booked call outside the legal hours"),
    "booked_no_capacity": _("booked call waiting for a free line"),
    "booked_contact_busy": _("booked call waiting: the person is on a call"),
}


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
        (_("Contacts claimed"), str(report.get("claimed", 0))),
        (_("Live calls after the claim"), str(report.get("live_calls", 0))),
        (_("Calls placed"), str(report.get("dialled", 0))),
        (_("Failed at the provider"), str(report.get("failed", 0))),
        (_("Released after a provider outage"), str(report.get("released", 0))),
        (_("Lost calls closed (recovery)"), str(report.get("recovered", 0))),
        (
            _("Quiet calls asked about at the provider"),
            f"{report.get('checked', 0)}, of which {report.get('reconciled', 0)} had ended",
        ),
        (_("Campaigns started"), campaigns(report.get("started", []))),
        (_("Campaigns completed"), campaigns(report.get("completed", []))),
        (
            _("Not called, and why"),
            "; ".join(
                f"{SKIP_REASONS.get(reason, reason.replace('_', ' '))}: {n}"
                for reason, n in sorted(skipped.items())
            )
            or _("nothing held back"),
        ),
        (_("Errors"), "; ".join(report.get("errors") or []) or _("none")),
        (_("Took"), f"{float(report.get('seconds') or 0):.3f} s"),
    ]
