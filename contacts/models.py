import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, Exists, OuterRef, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.models import Campaign
from campaigns.windows import is_valid_zone
from contacts.phones import InvalidPhone, normalise_phone, timezones_for


def zone_key(zones: list[str]) -> str:
    """The canonical text of a set of zones, stored so the tick can filter by it in SQL."""
    return " ".join(sorted(set(zones)))


class ContactState(models.TextChoices):
    PENDING = "pending", _("Pending")
    IN_PROGRESS = "in_progress", _("In progress")
    NOT_REACHED = "not_reached", _("Not reached (will retry)")
    COMPLETED = "completed", _("Completed")
    REFUSED = "refused", _("Refused (opted out)")
    EXCLUDED = "excluded", _("Excluded (do-not-call)")
    EXHAUSTED = "exhausted", _("Exhausted (max attempts)")
    INVALID = "invalid", _("Invalid number")


class Contact(models.Model):
    State = ContactState

    CALLABLE_STATES = (State.PENDING, State.NOT_REACHED)
    FINAL_STATES = (State.COMPLETED, State.REFUSED, State.EXCLUDED, State.EXHAUSTED, State.INVALID)

    # No index of its own: contact_phone_unique_per_campaign and contact_campaign_state_idx
    # lead with it, and every index costs each import row and each claim an entry.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="contacts", db_index=False
    )
    phone = models.CharField(max_length=20, help_text=_("E.164"))
    name = models.CharField(max_length=200, blank=True)
    external_id = models.CharField(max_length=100, blank=True)
    language = models.CharField(max_length=16, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    timezones = models.JSONField(
        default=list,
        blank=True,
        help_text=_("IANA zones of the callee; empty: the campaign's zone."),
    )
    # Space-joined `timezones` (or the campaign's zone): the tick works out which zone sets are
    # inside the calling window once per tick and filters on this column in SQL.
    timezone_key = models.CharField(max_length=1000, editable=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts_count = models.PositiveSmallIntegerField(
        default=0, help_text=_("Attempts that reached the provider.")
    )
    # Number of CallAttempt rows ever made for this contact, provider outages included; the
    # next attempt gets last_attempt_number + 1, and callbacks of older attempts are fenced
    # off by comparing with it.
    last_attempt_number = models.PositiveSmallIntegerField(default=0)
    completion_attempts_count = models.PositiveSmallIntegerField(
        default=0, help_text=_("Calls spent on finishing a started survey.")
    )
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        default=timezone.now, help_text=_("Earliest time the contact may be dialled again.")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "phone"], name="contact_phone_unique_per_campaign"
            ),
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in ContactState]), name="contact_state_valid"
            ),
            models.CheckConstraint(condition=Q(phone__startswith="+"), name="contact_phone_e164"),
            models.CheckConstraint(
                condition=Q(attempts_count__lte=models.F("last_attempt_number")),
                name="contact_attempts_within_rows",
            ),
            models.CheckConstraint(condition=~Q(timezone_key=""), name="contact_has_timezone"),
        ]
        indexes = [
            # The dialler's claim, one zone key at a time: "callable contacts of campaign C in
            # zone set K due by now, oldest first", and the skip-scan that lists a campaign's
            # distinct zone keys. The cost follows the batch, not the due rows in closed zones.
            # Partial on the callable states, so the index holds only the rows the tick may
            # claim. (It replaced a (campaign, next_attempt_at) index: every index costs each
            # imported row and each claim an entry.)
            models.Index(
                fields=["campaign", "timezone_key", "next_attempt_at"],
                condition=Q(state__in=["pending", "not_reached"]),
                name="contact_claim_idx",
            ),
            # The lifecycle's "all done" EXISTS per campaign, the contact list filtered by
            # campaign and state, and the tallies' reconcile (contacts.tallies).
            models.Index(fields=["campaign", "state"], name="contact_campaign_state_idx"),
            models.Index(fields=["phone"], name="contact_phone_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.phone} ({self.campaign_id})"

    def save(self, *args, **kwargs):
        self.fill_derived()
        super().save(*args, **kwargs)

    def fill_derived(self) -> None:
        """Normalise the phone and derive the time zones when they are not set."""
        if self.phone and not self.phone.startswith("+"):
            self.phone = normalise_phone(self.phone)
        if not self.timezones and self.phone:
            self.timezones = timezones_for(self.phone)
        zones = [z for z in self.timezones if is_valid_zone(z)] or [self.campaign.timezone]
        self.timezone_key = zone_key(zones)

    @property
    def zones(self) -> list[str]:
        return self.timezone_key.split()

    def is_callable(self, now: dt.datetime) -> bool:
        """The row-level rules (the do-not-call list and the window are the dialler's)."""
        return (
            self.state in self.CALLABLE_STATES
            and self.attempts_count < self.attempt_budget()
            and self.next_attempt_at <= now
        )

    def attempt_budget(self) -> int:
        """Calls this contact may receive: the campaign's max_attempts, plus one for each call
        granted by the completion rule (answered, hung up before the end)."""
        return self.campaign.max_attempts + self.completion_attempts_count


class ExclusionSource(models.TextChoices):
    MANUAL = "manual", _("Manual")
    IMPORT = "import", _("Import")
    API = "api", _("API")
    OPT_OUT = "opt_out", _("Opted out on a call")
    COMPLAINT = "complaint", _("Complaint")


class Exclusion(models.Model):
    """The do-not-call list. No campaign means every campaign."""

    Source = ExclusionSource

    phone = models.CharField(max_length=20, help_text=_("E.164"))
    campaign = models.ForeignKey(
        Campaign,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="exclusions",
        help_text=_("Empty: global (every campaign)."),
    )
    reason = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text=_("Empty: never expires."))

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One row per phone and scope; NULL campaign (global) needs its own partial
            # constraint because NULLs never collide in a plain unique constraint.
            models.UniqueConstraint(
                fields=["phone", "campaign"], name="exclusion_unique_per_campaign"
            ),
            models.UniqueConstraint(
                fields=["phone"], condition=Q(campaign__isnull=True), name="exclusion_unique_global"
            ),
            models.CheckConstraint(condition=Q(phone__startswith="+"), name="exclusion_phone_e164"),
            models.CheckConstraint(
                condition=Q(source__in=[s.value for s in ExclusionSource]),
                name="exclusion_source_valid",
            ),
        ]
        # The dial-time check looks exclusions up by phone (unique constraints above index it).

    def __str__(self) -> str:
        return f"{self.phone} ({_('global') if self.campaign_id is None else self.campaign})"

    def save(self, *args, **kwargs):
        if self.phone and not self.phone.startswith("+"):
            self.phone = normalise_phone(self.phone)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        """Any format in, E.164 stored (forms validate the constraints before save())."""
        if self.phone:
            try:
                self.phone = normalise_phone(self.phone)
            except InvalidPhone as exc:
                raise ValidationError({"phone": str(exc)}) from exc


def in_force(now: dt.datetime):
    """Every do-not-call entry in force at `now` (never expiring, or not yet expired)."""
    return Exclusion.objects.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


def active_exclusions(now: dt.datetime, campaign_id: int | None = None):
    """Exclusions in force at `now`: global ones, plus the campaign's own when given."""
    scope = Q(campaign__isnull=True)
    if campaign_id is not None:
        scope |= Q(campaign_id=campaign_id)
    return in_force(now).filter(scope)


def is_excluded(phone: str, *, campaign_id: int | None, now: dt.datetime) -> bool:
    return active_exclusions(now, campaign_id).filter(phone=phone).exists()


def release_unlisted_contacts(phones, *, now: dt.datetime) -> int:
    """The reverse of exclude_listed_contacts, after entries are removed or made to expire:
    the numbers' `excluded` contacts with no never-expiring entry left for them (global, or
    their campaign's) wait to be called again, from now (`pending`, or `not_reached` once
    called). An entry still in force that expires holds them back at dial time while it lasts.
    A contact who opted out is `refused`, not `excluded`, and stays so."""
    for_good = Exclusion.objects.filter(phone=OuterRef("phone"), expires_at__isnull=True).filter(
        Q(campaign__isnull=True) | Q(campaign_id=OuterRef("campaign_id"))
    )
    contacts = Contact.objects.filter(phone__in=list(phones), state=Contact.State.EXCLUDED)
    return contacts.exclude(Exists(for_good)).update(
        state=Case(
            When(attempts_count=0, then=Value(Contact.State.PENDING)),
            default=Value(Contact.State.NOT_REACHED),
        ),
        next_attempt_at=now,
        updated_at=now,
    )


def exclude_listed_contacts(phones, *, campaign_id: int | None, now: dt.datetime) -> int:
    """A permanent do-not-call entry for these numbers (in every campaign, or in one): their
    contacts that are still waiting to be called become `excluded`, so the campaign can
    complete instead of keeping them pending for ever (the dial-time check would skip them on
    every tick). A contact on a call right now is left to its call; an entry that expires only
    holds contacts back at dial time while it lasts. Returns how many contacts moved."""
    contacts = Contact.objects.filter(phone__in=list(phones), state__in=Contact.CALLABLE_STATES)
    if campaign_id is not None:
        contacts = contacts.filter(campaign_id=campaign_id)
    return contacts.update(state=Contact.State.EXCLUDED, updated_at=now)


class RejectedImportRows(models.Model):
    """The rows an import rejected, kept a short while (contacts.rejected_rows.KEEP_FOR) so
    the operator who imported the file can download them, fix them and import them again."""

    class Kind(models.TextChoices):
        CONTACTS = "contacts", _("Contacts")
        EXCLUSIONS = "exclusions", _("Exclusions")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    header = models.JSONField(default=list, help_text=_("The file's header row as written."))
    rows = models.JSONField(
        default=list, help_text=_("Each row's values, then why it was refused.")
    )
    rejected = models.PositiveIntegerField(help_text=_("Rows rejected (rows may keep fewer)."))

    class Meta:
        verbose_name = _("rejected import rows")
        verbose_name_plural = _("rejected import rows")
        indexes = [
            # The purge of old rows at each import.
            models.Index(fields=["created_at"], name="rejected_rows_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rejected} rejected {self.kind} rows ({self.created_at:%Y-%m-%d %H:%M})"


class StateTally(models.Model):
    """A change in the number of a campaign's contacts in one state: the rows are deltas,
    written by database triggers on the contacts table and summed when read (contacts.tallies
    says why, and folds and reconciles them)."""

    # No database constraint: deleting a campaign deletes its contacts, whose trigger writes
    # their deltas against the campaign being deleted; an enforced key would fail at commit.
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="tallies",
        db_index=False,
    )
    state = models.CharField(max_length=16, choices=ContactState.choices)
    n = models.BigIntegerField()

    class Meta:
        verbose_name = _("contact tally")
        verbose_name_plural = _("contact tallies")
        indexes = [
            # The sums by campaign and state (contacts.tallies), and the fold's grouping.
            models.Index(fields=["campaign", "state"], name="tally_campaign_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.state} {self.n:+d}"
