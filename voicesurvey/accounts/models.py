"""API tokens, stored as a SHA-256 digest: the key is shown once, when issued, and can never be
read back (not from the admin, not from the database)."""

import hashlib
import secrets

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

PREFIX_LENGTH = 8


def digest(key: str) -> str:
    """A key is 160 random bits: a plain SHA-256 is enough (no salt or slow hash is needed
    against guessing), and it lets a request find its token with one indexed lookup."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True, help_text=_("What the token is for."))
    prefix = models.CharField(
        max_length=PREFIX_LENGTH, editable=False, help_text=_("The key's first characters.")
    )
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("API token")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    def set_key(self, key: str) -> None:
        self.prefix, self.digest = key[:PREFIX_LENGTH], digest(key)


def new_key() -> str:
    return secrets.token_hex(20)  # 40 hex characters, as DRF's own tokens


def issue_token(user, *, name: str = "") -> tuple[ApiToken, str]:
    """A new token for `user` and its key, the only time the key exists outside the client."""
    key = new_key()
    token = ApiToken(user=user, name=name)
    token.set_key(key)
    token.save()
    return token, key


class OperatorProfile(models.Model):
    """A back-office user's own settings: for now the time zone the admin shows times in."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operator_profile"
    )
    time_zone = models.CharField(
        max_length=64, blank=True, help_text=_("IANA zone, e.g. Europe/Paris; empty: TIME_ZONE.")
    )

    def __str__(self) -> str:
        return f"{self.user}: {self.time_zone or settings.TIME_ZONE}"


class IdempotentRequest(models.Model):
    """A POST sent with an `Idempotency-Key` header and the answer it got: the same key sent
    again by the same user gets that answer back instead of doing the work twice
    (voicesurvey.accounts.idempotency). Kept IDEMPOTENCY_KEY_HOURS, then the key is free."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text=_("SHA-256 of method, path and body."))
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")
        ]
        indexes = [models.Index(fields=["user", "created_at"], name="idempotency_user_age_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({self.user})"
