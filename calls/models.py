import secrets
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from campaigns.models import Campaign, Question
from contacts.models import Contact


def new_call_id() -> str:
    """Our id for a call, put in every callback URL: unguessable, so URLs cannot be forged
    from a neighbour's id (the signature is the real guard)."""
    return secrets.token_urlsafe(16)


class CallAttemptStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    INITIATED = "initiated", _("Initiated")
    RINGING = "ringing", _("Ringing")
    IN_PROGRESS = "in_progress", _("In progress")
    COMPLETED = "completed", _("Completed")
    BUSY = "busy", _("Busy")
    NO_ANSWER = "no_answer", _("No answer")
    FAILED = "failed", _("Failed")
    CANCELED = "canceled", _("Cancelled")  # Twilio's spelling for the value; ours for the label


class CallAttemptAnsweredBy(models.TextChoices):
    UNKNOWN = "unknown", _("Unknown")
    HUMAN = "human", _("Human")
    MACHINE = "machine", _("Machine")


class CallAttempt(models.Model):
    Status = CallAttemptStatus
    AnsweredBy = CallAttemptAnsweredBy

    LIVE_STATUSES = (Status.QUEUED, Status.INITIATED, Status.RINGING, Status.IN_PROGRESS)
    FINAL_STATUSES = (
        Status.COMPLETED,
        Status.BUSY,
        Status.NO_ANSWER,
        Status.FAILED,
        Status.CANCELED,
    )
    # Stage order: a callback may move an attempt forward, never back.
    STAGE = {
        Status.QUEUED: 0,
        Status.INITIATED: 1,
        Status.RINGING: 2,
        Status.IN_PROGRESS: 3,
        Status.COMPLETED: 4,
        Status.BUSY: 4,
        Status.NO_ANSWER: 4,
        Status.FAILED: 4,
        Status.CANCELED: 4,
    }

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    call_id = models.CharField(max_length=32, unique=True, default=new_call_id, editable=False)
    # No index of their own: attempt_number_unique_per_contact and the two (campaign,
    # created_at) indexes lead with these columns. Every index costs each dial, callback and
    # write-back an entry (an attempt's row is rewritten a few times in its life).
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="attempts", db_index=False
    )
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="attempts", db_index=False
    )
    scheduled_call = models.ForeignKey(
        "calls.ScheduledCall",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="attempts",
        db_index=False,  # attempt_scheduled_call_idx: partial, most attempts have none
    )
    attempt_number = models.PositiveSmallIntegerField()
    provider = models.CharField(max_length=16, blank=True)
    provider_call_sid = models.CharField(max_length=64, null=True, blank=True, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    answered_by = models.CharField(
        max_length=16, choices=AnsweredBy.choices, default=AnsweredBy.UNKNOWN
    )
    # The campaign's call settings at the moment this attempt dials: a retry uses the settings
    # in force when it dials, and the record shows what was used.
    caller_id = models.CharField(max_length=20, blank=True)
    machine_detection = models.BooleanField(default=False)
    # The survey's progress on this call.
    survey_finished = models.BooleanField(default=False)
    opted_out = models.BooleanField(default=False)
    # The contact's state when this attempt claimed it: a scheduled call that does not reach
    # the person gives the contact back its state instead of spending campaign retries.
    contact_state_before = models.CharField(max_length=16, blank=True)
    callback_requested_for = models.DateTimeField(
        null=True, blank=True, help_text=_("The callee asked to be called back at this time.")
    )
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    last_sequence_number = models.IntegerField(
        null=True, blank=True, help_text=_("Highest Twilio SequenceNumber seen.")
    )
    created_at = models.DateTimeField()
    dialled_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Seconds of talk time.")
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "attempt_number"], name="attempt_number_unique_per_contact"
            ),
            models.CheckConstraint(
                condition=Q(attempt_number__gte=1), name="attempt_number_positive"
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in CallAttemptStatus]),
                name="attempt_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(answered_by__in=[a.value for a in CallAttemptAnsweredBy]),
                name="attempt_answered_by_valid",
            ),
            models.CheckConstraint(
                condition=Q(duration__isnull=True) | Q(duration__gte=0),
                name="attempt_duration_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "initiated", "ringing", "in_progress"])
                | Q(ended_at__isnull=False),
                name="attempt_final_has_end",
            ),
        ]
        indexes = [
            # Recovery's scan for attempts still live past their lease, and the live-call count
            # per campaign used by the claim's capacity: partial, so they stay small.
            models.Index(
                fields=["campaign", "created_at"],
                condition=Q(status__in=["queued", "initiated", "ringing", "in_progress"]),
                name="attempt_live_idx",
            ),
            # Dashboard: attempts of the last 24 h per campaign by hour and outcome. Covering
            # (PostgreSQL) so the aggregate is an index-only scan: without it, fetching the
            # day's rows from the heap was most of the dashboard's time at 3M attempts.
            models.Index(
                fields=["campaign", "created_at"],
                include=[
                    "status",
                    "answered_by",
                    "survey_finished",
                    "opted_out",
                    "error_code",
                    "callback_requested_for",
                    "dialled_at",
                    "answered_at",
                ],
                name="attempt_dashboard_idx",
            ),
            models.Index(
                fields=["scheduled_call"],
                condition=Q(scheduled_call__isnull=False),
                name="attempt_scheduled_call_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Attempt {self.attempt_number} of contact {self.contact_id} ({self.status})"

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE_STATUSES

    @property
    def reached_provider(self) -> bool:
        """Whether the provider accepted this call; only such attempts use up the contact's
        attempts (an outage, or a crash before dialling, is not a call to the person)."""
        return self.dialled_at is not None

    @property
    def outcome(self) -> str:
        """The outcome the retry rules look at: completed, incomplete, machine, busy,
        no_answer, failed, rejected, provider_unavailable, lost, stopped (not dialled: the
        campaign stopped after the claim), refused, callback."""
        if self.opted_out:
            return "refused"
        if self.error_code == "lost" and self.survey_finished:
            # Closed by recovery without its final callback, but every answer is in.
            return "completed"
        if self.error_code in ("number_rejected", "provider_unavailable", "lost", "stopped"):
            return {"number_rejected": "rejected"}.get(self.error_code, self.error_code)
        if self.callback_requested_for is not None:
            return "callback"
        if self.status == CallAttemptStatus.COMPLETED:
            if self.answered_by == CallAttemptAnsweredBy.MACHINE:
                return "machine"
            return "completed" if self.survey_finished else "incomplete"
        return {
            CallAttemptStatus.BUSY: "busy",
            CallAttemptStatus.NO_ANSWER: "no_answer",
        }.get(self.status, "failed")


class CallEvent(models.Model):
    """Append-only log of what happened to an attempt or a scheduled call."""

    attempt = models.ForeignKey(
        CallAttempt, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    scheduled_call = models.ForeignKey(
        "calls.ScheduledCall",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,  # event_scheduled_call_idx: partial, a call's events have none
    )
    kind = models.CharField(
        max_length=40, help_text=_("e.g. status, webhook, provider_error, claimed, paused")
    )
    message = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True, help_text=_("Phone numbers masked."))
    actor = models.CharField(
        max_length=150, blank=True, help_text=_("Who did it: a username, 'dialler', 'provider'.")
    )
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(attempt__isnull=False) | Q(scheduled_call__isnull=False),
                name="event_belongs_to_something",
            ),
        ]
        indexes = [
            models.Index(
                fields=["scheduled_call"],
                condition=Q(scheduled_call__isnull=False),
                name="event_scheduled_call_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind}"


class Answer(models.Model):
    attempt = models.ForeignKey(CallAttempt, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="answers")
    raw_input = models.TextField(blank=True)
    value = models.CharField(
        max_length=500,
        help_text=_("Normalised answer: digits, 'yes'/'no', a scale number or text."),
    )
    confidence = models.FloatField(
        null=True, blank=True, help_text=_("Speech recognition confidence, 0 to 1.")
    )
    answered_at = models.DateTimeField()

    class Meta:
        ordering = ["attempt", "question__position"]
        constraints = [
            models.UniqueConstraint(
                fields=["attempt", "question"], name="answer_once_per_question_per_call"
            ),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__gte=0, confidence__lte=1),
                name="answer_confidence_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.question_id}: {self.value}"


class ScheduledCallStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    PAUSED = "paused", _("Paused")
    RUNNING = "running", _("Running")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")
    MISSED = "missed", _("Missed")
    CANCELLED = "cancelled", _("Cancelled")


# A booking's own settings, as the API, the admin's form and the database all bound them.
MAX_BOOKING_RETRIES = 10
MAX_BOOKING_RETRY_DELAY_MINUTES = 24 * 60
MAX_MISFIRE_GRACE_SECONDS = 24 * 3600


class ScheduledCall(models.Model):
    """A call to one contact at a set time, once or on an RFC 5545 rule."""

    Status = ScheduledCallStatus

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="scheduled_calls")
    run_at = models.DateTimeField(help_text=_("First occurrence, stored in UTC."))
    timezone = models.CharField(
        max_length=64,
        default="UTC",
        help_text=_("The zone run_at was given in; recurrences are computed in it."),
    )
    rrule = models.TextField(
        blank=True, help_text=_("RFC 5545 rule, e.g. FREQ=WEEKLY;BYDAY=MO,WE;COUNT=5.")
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    next_run_at = models.DateTimeField(
        null=True, blank=True, help_text=_("The occurrence the dialler will place next (UTC).")
    )
    misfire_grace_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(MAX_MISFIRE_GRACE_SECONDS)],
        help_text=_("Empty: the project's setting."),
    )
    retries_done = models.PositiveSmallIntegerField(default=0)
    max_retries = models.PositiveSmallIntegerField(
        default=2, validators=[MaxValueValidator(MAX_BOOKING_RETRIES)]
    )
    retry_delay_minutes = models.PositiveIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_BOOKING_RETRY_DELAY_MINUTES)],
    )
    skipped_occurrences = models.JSONField(
        default=list, blank=True, help_text=_("Occurrences (UTC ISO) cancelled one by one.")
    )
    note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["next_run_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in ScheduledCallStatus]),
                name="scheduled_call_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="scheduled") | Q(next_run_at__isnull=False),
                name="scheduled_call_scheduled_has_next_run",
            ),
        ]
        indexes = [
            # The tick's claim of due scheduled calls.
            models.Index(
                fields=["next_run_at"],
                condition=Q(status="scheduled"),
                name="scheduled_call_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Call to {self.contact_id} at {self.next_run_at or self.run_at:%Y-%m-%d %H:%M} UTC"


class DiallerHeartbeat(models.Model):
    """One row (pk=1): when the last tick finished and what it did, for /healthz and the
    dashboard. Every tick on every machine overwrites it."""

    last_tick_at = models.DateTimeField()
    worker = models.CharField(max_length=200, blank=True)
    report = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"Last tick {self.last_tick_at:%Y-%m-%d %H:%M:%S} by {self.worker}"


class DialPace(models.Model):
    """The calls-per-second pace shared by every scheduler on one PostgreSQL database: the
    time of the next free dial slot (calls.dialler.pace.SharedPace). Unlogged on PostgreSQL: after
    a crash the pace simply starts afresh."""

    key = models.CharField(max_length=40, primary_key=True)
    next_slot = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.key}: next slot {self.next_slot:%H:%M:%S.%f}"


class ProviderAccountProvider(models.TextChoices):
    TWILIO = "twilio", _("Twilio")
    SIMULATED = "simulated", _("Simulated")


MAX_CALLS_PER_SECOND = 1000
MAX_CONCURRENT_CALLS = 100_000


class ProviderAccount(models.Model):
    """The dialling limits of one provider account, which an operator changes without a
    restart: the tick reads them each time (calls.dialler.limits). A limit left empty, or an
    account with no row, takes its setting (DIALLER_GLOBAL_MAX_CONCURRENT_CALLS,
    DIALLER_CALLS_PER_SECOND)."""

    Provider = ProviderAccountProvider

    provider = models.CharField(max_length=16, choices=Provider.choices)
    account = models.CharField(
        max_length=64,
        blank=True,
        help_text=_(
            "Twilio: the account SID (AC…) these limits are for; empty: whichever account "
            "the settings name."
        ),
    )
    max_concurrent_calls = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_CONCURRENT_CALLS)],
        help_text=_(
            "Calls live at once across every campaign (the global cap); empty: the "
            "DIALLER_GLOBAL_MAX_CONCURRENT_CALLS setting."
        ),
    )
    calls_per_second = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.01), MaxValueValidator(MAX_CALLS_PER_SECOND)],
        help_text=_(
            "The pace calls are placed at (Twilio's account default is 1); empty: the "
            "DIALLER_CALLS_PER_SECOND setting."
        ),
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "account"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "account"], name="provider_account_unique"),
            models.CheckConstraint(
                condition=Q(provider__in=[p.value for p in ProviderAccountProvider]),
                name="provider_account_provider_valid",
            ),
            models.CheckConstraint(
                condition=Q(max_concurrent_calls__isnull=True)
                | Q(max_concurrent_calls__gte=1, max_concurrent_calls__lte=MAX_CONCURRENT_CALLS),
                name="provider_account_cap_in_range",
            ),
            models.CheckConstraint(
                condition=Q(calls_per_second__isnull=True)
                | Q(calls_per_second__gte=0.01, calls_per_second__lte=MAX_CALLS_PER_SECOND),
                name="provider_account_pace_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.account or '(the configured account)'}"
