import datetime as dt
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy

from campaigns import windows

ALL_WEEKDAYS = [0, 1, 2, 3, 4, 5, 6]  # Monday is 0, as in datetime.weekday()


def default_weekdays() -> list[int]:
    return [0, 1, 2, 3, 4]


def default_timezone() -> str:
    return settings.DEFAULT_CAMPAIGN_TIMEZONE


class IllegalTransition(Exception):
    """A status change the campaign's state machine does not allow (API: 409)."""


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", gettext_lazy("Draft")
    SCHEDULED = "scheduled", gettext_lazy("Scheduled")
    RUNNING = "running", gettext_lazy("Running")
    PAUSED = "paused", gettext_lazy("Paused")
    COMPLETED = "completed", gettext_lazy("Completed")
    CANCELLED = "cancelled", gettext_lazy("Cancelled")


class CampaignWindowPolicy(models.TextChoices):
    CONTACT = "contact", gettext_lazy("Callee's local time")
    CAMPAIGN = "campaign", gettext_lazy("Campaign's time zone")


class CampaignMachinePolicy(models.TextChoices):
    HANG_UP = "hang_up", gettext_lazy("Hang up")
    VOICEMAIL = "voicemail", gettext_lazy("Leave the voicemail message")


class Campaign(models.Model):
    Status = CampaignStatus
    WindowPolicy = CampaignWindowPolicy
    MachinePolicy = CampaignMachinePolicy

    # action -> (statuses it may start from, status it leads to)
    TRANSITIONS = {
        "schedule": ((Status.DRAFT,), Status.SCHEDULED),
        "start": ((Status.DRAFT, Status.SCHEDULED), Status.RUNNING),
        "pause": ((Status.RUNNING,), Status.PAUSED),
        "resume": ((Status.PAUSED,), Status.RUNNING),
        "complete": ((Status.RUNNING, Status.PAUSED), Status.COMPLETED),
        "cancel": (
            (Status.DRAFT, Status.SCHEDULED, Status.RUNNING, Status.PAUSED),
            Status.CANCELLED,
        ),
    }
    FINAL_STATUSES = (Status.COMPLETED, Status.CANCELLED)

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    start_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=gettext_lazy("A scheduled campaign starts by itself at this time."),
    )
    end_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=gettext_lazy("A running campaign completes by itself at this time."),
    )

    # Calling window
    timezone = models.CharField(
        max_length=64,
        default=default_timezone,
        help_text=gettext_lazy(
            "IANA zone: for the 'campaign' policy and numbers with no derivable zone."
        ),
    )
    window_policy = models.CharField(
        max_length=16, choices=WindowPolicy.choices, default=WindowPolicy.CONTACT
    )
    window_start = models.TimeField(default=dt.time(9, 0))
    window_end = models.TimeField(default=dt.time(20, 0))
    weekdays = models.JSONField(
        default=default_weekdays,
        help_text=gettext_lazy("Allowed weekdays, 0 = Monday … 6 = Sunday."),
    )

    # Dialling rules
    max_attempts = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(20)]
    )
    retry_busy_minutes = models.PositiveIntegerField(default=15)
    retry_no_answer_minutes = models.PositiveIntegerField(default=60)
    retry_failed_minutes = models.PositiveIntegerField(default=30)
    retry_machine_minutes = models.PositiveIntegerField(default=120)
    completion_max_attempts = models.PositiveSmallIntegerField(
        default=2,
        help_text=gettext_lazy("Extra calls to people who answered but did not finish the survey."),
    )
    completion_retry_minutes = models.PositiveIntegerField(default=30)
    max_concurrent_calls = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1)]
    )
    caller_id = models.CharField(
        max_length=20,
        blank=True,
        help_text=gettext_lazy("E.164; overrides the provider's default number."),
    )
    machine_detection = models.BooleanField(default=True)
    machine_policy = models.CharField(
        max_length=16, choices=MachinePolicy.choices, default=MachinePolicy.HANG_UP
    )
    voicemail_message = models.TextField(blank=True)

    # Survey
    intro_message = models.TextField(blank=True)
    closing_message = models.TextField(blank=True, default="Thank you for your time. Goodbye.")
    opt_out_message = models.TextField(
        blank=True,
        default="You will not be called again. Thank you, goodbye.",
        help_text=gettext_lazy("Said after the opt-out key, before hanging up."),
    )
    callback_message = models.TextField(
        blank=True,
        default="Thank you. We will call you back in about {delay}. Goodbye.",
        help_text=gettext_lazy(
            "Said after the call-back key; {delay} is the delay in English words "
            '("2 hours"): leave it out in another language.'
        ),
    )
    voice = models.CharField(max_length=40, default="alice")
    language = models.CharField(max_length=16, default="en-US")
    opt_out_key = models.CharField(
        max_length=1,
        default="9",
        help_text=gettext_lazy("Keypad key that puts the number on the do-not-call list."),
    )
    callback_key = models.CharField(
        max_length=1,
        blank=True,
        help_text=gettext_lazy("Keypad key to ask to be called later; empty disables it."),
    )
    callback_delay_minutes = models.PositiveIntegerField(default=120)

    # Set on the campaigns made for the API's ad-hoc calls (calls.booking.ad_hoc): a
    # fingerprint of what the call says, so the same message or survey reuses its campaign.
    # Such a campaign dials only its bookings and never completes by itself.
    ad_hoc_key = models.CharField(max_length=64, blank=True, editable=False)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in CampaignStatus]),
                name="campaign_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(window_policy__in=[p.value for p in CampaignWindowPolicy]),
                name="campaign_window_policy_valid",
            ),
            models.CheckConstraint(
                condition=Q(machine_policy__in=[p.value for p in CampaignMachinePolicy]),
                name="campaign_machine_policy_valid",
            ),
            models.CheckConstraint(
                condition=Q(max_attempts__gte=1), name="campaign_max_attempts_positive"
            ),
            models.CheckConstraint(
                condition=Q(max_concurrent_calls__gte=1), name="campaign_max_concurrent_positive"
            ),
            models.CheckConstraint(
                condition=Q(end_at__isnull=True)
                | Q(start_at__isnull=True)
                | Q(end_at__gt=models.F("start_at")),
                name="campaign_ends_after_start",
            ),
            models.CheckConstraint(
                condition=~Q(window_start=models.F("window_end")), name="campaign_window_not_empty"
            ),
            models.CheckConstraint(
                condition=~Q(opt_out_key=models.F("callback_key")),
                name="campaign_opt_out_key_differs_from_callback_key",
            ),
        ]
        indexes = [
            # The tick's lifecycle and claim steps look campaigns up by status.
            models.Index(fields=["status", "start_at"], name="campaign_status_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if not windows.is_valid_zone(self.timezone):
            errors["timezone"] = gettext("Unknown time zone '%(zone)s'.") % {"zone": self.timezone}
        if (
            not isinstance(self.weekdays, list)
            or not self.weekdays
            or any(d not in ALL_WEEKDAYS for d in self.weekdays)
        ):
            errors["weekdays"] = gettext(
                "Give at least one weekday, as numbers 0 (Monday) to 6 (Sunday)."
            )
        if self.window_start is not None and self.window_end is not None:
            if self.window_start == self.window_end:
                errors["window_end"] = gettext("The calling window is empty.")
            else:
                legal_start, legal_end = windows.legal_window()
                if not windows.window_within(
                    self.window_start, self.window_end, legal_start, legal_end
                ):
                    errors["window_end"] = gettext(
                        "The calling window must lie inside the legal window "
                        "%(start)s-%(end)s (callee's local time)."
                    ) % {"start": f"{legal_start:%H:%M}", "end": f"{legal_end:%H:%M}"}
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            errors["end_at"] = gettext("The end must come after the start.")
        if self.caller_id:
            from contacts.phones import InvalidPhone, normalise_phone

            try:
                self.caller_id = normalise_phone(self.caller_id)
            except InvalidPhone as exc:
                errors["caller_id"] = str(exc)
        if self.callback_key and self.callback_key == self.opt_out_key:
            errors["callback_key"] = gettext("The call-back key must differ from the opt-out key.")
        for field in ("opt_out_key", "callback_key"):
            key = getattr(self, field)
            if key and key not in "0123456789*#":
                errors[field] = gettext("Use one keypad key: 0-9, * or #.")
        if errors:
            raise ValidationError(errors)

    # --- status machine ---------------------------------------------------------------------

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES

    @property
    def is_ad_hoc(self) -> bool:
        return bool(self.ad_hoc_key)

    def can(self, action: str) -> bool:
        sources, _ = self.TRANSITIONS[action]
        return self.status in sources

    def transition(self, action: str, *, now: dt.datetime | None = None) -> None:
        """Move to the status `action` leads to, or raise IllegalTransition.

        The move is a guarded UPDATE on the current status, so two operators (or an operator
        and the tick) racing on one campaign cannot both win."""
        if action not in self.TRANSITIONS:
            raise IllegalTransition(
                gettext("Unknown campaign action '%(action)s'.") % {"action": action}
            )
        sources, target = self.TRANSITIONS[action]
        verb, done = ACTION_WORDS[action]
        if self.status not in sources:
            raise IllegalTransition(
                gettext(
                    "Cannot %(action)s campaign '%(name)s': it is %(status)s, "
                    "and only a %(sources)s campaign can be %(done)s."
                )
                % {
                    "action": verb,
                    "name": self.name,
                    "status": status_word(self.status),
                    # Translators: joins statuses, as in "a draft or scheduled campaign".
                    "sources": gettext(" or ").join(map(status_word, sources)),
                    "done": done,
                }
            )
        if action == "start" and not self.questions.exists():
            raise IllegalTransition(
                gettext("Cannot start campaign '%(name)s': it has no questions.")
                % {"name": self.name}
            )
        if action == "schedule" and self.start_at is None:
            raise IllegalTransition(
                gettext("Cannot schedule campaign '%(name)s': set its start time first.")
                % {"name": self.name}
            )
        now = now or timezone.now()
        changed = Campaign.objects.filter(pk=self.pk, status__in=sources).update(
            status=target, updated_at=now
        )
        if not changed:
            self.refresh_from_db(fields=["status"])
            raise IllegalTransition(
                gettext("Cannot %(action)s campaign '%(name)s': it is now %(status)s.")
                % {"action": verb, "name": self.name, "status": status_word(self.status)}
            )
        self.status = target

    def schedule(self, **kw) -> None:
        self.transition("schedule", **kw)

    def start(self, **kw) -> None:
        self.transition("start", **kw)

    def pause(self, **kw) -> None:
        self.transition("pause", **kw)

    def resume(self, **kw) -> None:
        self.transition("resume", **kw)

    def complete(self, **kw) -> None:
        self.transition("complete", **kw)

    def cancel(self, **kw) -> None:
        self.transition("cancel", **kw)

    def retry_delay(self, outcome: str) -> dt.timedelta:
        """Delay before the next call after an attempt that ended with `outcome`."""
        minutes = {
            "busy": self.retry_busy_minutes,
            "no_answer": self.retry_no_answer_minutes,
            "machine": self.retry_machine_minutes,
            "incomplete": self.completion_retry_minutes,
        }.get(outcome, self.retry_failed_minutes)
        return dt.timedelta(minutes=minutes)


def status_word(status: str) -> str:
    """A campaign status as a sentence says it, in the operator's language ("paused")."""
    return str(CampaignStatus(status).label).lower()


# Each action as the messages say it: the verb ("Cannot pause campaign …") and what the
# campaign becomes ("… can be paused").
ACTION_WORDS = {
    "schedule": (
        pgettext_lazy("campaign action", "schedule"),
        pgettext_lazy("campaign action done", "scheduled"),
    ),
    "start": (
        pgettext_lazy("campaign action", "start"),
        pgettext_lazy("campaign action done", "started"),
    ),
    "pause": (
        pgettext_lazy("campaign action", "pause"),
        pgettext_lazy("campaign action done", "paused"),
    ),
    "resume": (
        pgettext_lazy("campaign action", "resume"),
        pgettext_lazy("campaign action done", "resumed"),
    ),
    "complete": (
        pgettext_lazy("campaign action", "complete"),
        pgettext_lazy("campaign action done", "completed"),
    ),
    "cancel": (
        pgettext_lazy("campaign action", "cancel"),
        pgettext_lazy("campaign action done", "cancelled"),
    ),
}


KEY_NAMES = {
    "opt_out_key": pgettext_lazy("keypad key", "opt-out"),
    "callback_key": pgettext_lazy("keypad key", "call-back"),
}

# "Press 1 for yes, 2 for no", "1 for basic, or 3 for premium", "5 means very likely": a key,
# then "for", "means" or "=", then its meaning up to the next comma, full stop or "or".
KEY_MEANING = re.compile(
    r"(?<![\w*#])([0-9*#]+)\s*(?:for|means|=)\s+(.+?)\s*(?=[,.;:!?)]|\s(?:or|and)\s|$)",
    re.IGNORECASE,
)


class QuestionKind(models.TextChoices):
    DIGITS = "digits", gettext_lazy("Keypad digits")
    YES_NO = "yes_no", gettext_lazy("Yes / no (1 = yes, 2 = no)")
    SCALE = "scale", gettext_lazy("Scale (min to max)")
    SPEECH = "speech", gettext_lazy("Spoken answer")


class Question(models.Model):
    Kind = QuestionKind

    # The settings each kind of question reads; the others are ignored (and the admin's form
    # shows only these). Every kind reads the prompt and the re-prompt settings.
    KIND_FIELDS = {
        QuestionKind.DIGITS: ("valid_answers", "max_digits"),
        QuestionKind.YES_NO: (),
        QuestionKind.SCALE: ("min_value", "max_value"),
        QuestionKind.SPEECH: (),
    }

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    prompt = models.TextField()
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.DIGITS)
    min_value = models.IntegerField(
        null=True, blank=True, help_text=gettext_lazy("Scale questions: lowest answer.")
    )
    max_value = models.IntegerField(
        null=True, blank=True, help_text=gettext_lazy("Scale questions: highest answer.")
    )
    valid_answers = models.JSONField(
        default=list,
        blank=True,
        help_text=gettext_lazy(
            'Digits questions: accepted entries, e.g. ["1", "2"]; empty accepts any.'
        ),
    )
    max_digits = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(20)]
    )
    reprompt_message = models.TextField(blank=True, default="Sorry, I did not get that.")
    max_reprompts = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(5)])

    class Meta:
        ordering = ["campaign", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "position"], name="question_position_unique"
            ),
            models.CheckConstraint(condition=Q(position__gte=1), name="question_position_positive"),
            models.CheckConstraint(
                condition=Q(kind__in=[k.value for k in QuestionKind]), name="question_kind_valid"
            ),
            models.CheckConstraint(
                condition=~Q(kind="scale")
                | Q(
                    min_value__isnull=False,
                    max_value__isnull=False,
                    min_value__lt=models.F("max_value"),
                ),
                name="question_scale_has_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.prompt[:60]}"

    def one_key_answers(self) -> set[str]:
        """The answers a caller gives with a single key press."""
        if self.kind == self.Kind.YES_NO:
            return {"1", "2"}
        if (
            self.kind == self.Kind.SCALE
            and self.min_value is not None
            and self.max_value is not None
        ):
            return {str(v) for v in range(max(self.min_value, 0), min(self.max_value, 9) + 1)}
        if self.kind == self.Kind.DIGITS and isinstance(self.valid_answers, list):
            return {a for a in self.valid_answers if isinstance(a, str) and len(a) == 1}
        return set()

    def answer_meanings(self) -> dict[str, str]:
        """What each keypad answer means, as the prompt says it ("Press 1 for yes, 2 for no"
        -> {"1": "yes", "2": "no"}), for keypad and scale questions; {} when the prompt
        does not say. A digits question's listed answers limit which keys are read."""
        if self.kind not in (self.Kind.DIGITS, self.Kind.SCALE):
            return {}
        listed = set(self.valid_answers) if isinstance(self.valid_answers, list) else set()
        meanings: dict[str, str] = {}
        for key, meaning in KEY_MEANING.findall(self.prompt):
            if (not listed or key in listed) and key not in meanings:
                meanings[key] = meaning
        return meanings

    def clashing_key(self, campaign: "Campaign") -> str | None:
        """The campaign's key field ("opt_out_key" or "callback_key") whose key is also one of
        this question's answers: the key wins during the call, so that answer could never be
        given (and a caller meaning to answer would be opted out)."""
        answers = self.one_key_answers()
        for field in ("opt_out_key", "callback_key"):
            if getattr(campaign, field) and getattr(campaign, field) in answers:
                return field
        return None

    def reserved_key_clashes(self, campaign: "Campaign") -> dict[str, str]:
        """clashing_key's finding as {field of this question: message}, or {}."""
        field = self.clashing_key(campaign)
        if field is None:
            return {}
        key, name = getattr(campaign, field), KEY_NAMES[field]
        where = {self.Kind.SCALE: "min_value", self.Kind.DIGITS: "valid_answers"}
        return {
            where.get(self.kind, "kind"): gettext(
                "Key %(key)s is this campaign's %(name)s key, so the answer %(key)s could never "
                "be given: change the %(name)s key or this question's answers."
            )
            % {"key": key, "name": name}
        }

    def clean(self) -> None:
        if self.kind == self.Kind.SCALE:
            if self.min_value is None or self.max_value is None or self.min_value >= self.max_value:
                raise ValidationError(
                    {"max_value": gettext("A scale needs a minimum below its maximum.")}
                )
            if self.max_value > 9 and self.max_digits < len(str(self.max_value)):
                self.max_digits = len(str(self.max_value))
        if not isinstance(self.valid_answers, list) or any(
            not isinstance(a, str) or not a.strip("0123456789*#") == "" for a in self.valid_answers
        ):
            raise ValidationError(
                {
                    "valid_answers": gettext(
                        'List the accepted keypad entries as strings, e.g. ["1", "2"].'
                    )
                }
            )
