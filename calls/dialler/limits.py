"""The dialling limits in force: the global concurrency cap and the calls-per-second pace of
the provider account the dialler calls through.

An operator sets them on the account's ProviderAccount row (admin or API); the tick reads them
once per tick, so a change holds from the next tick on, without a restart. A limit left empty,
or an account with no row, takes its setting."""

from dataclasses import dataclass

from django.conf import settings

from calls.models import ProviderAccount


@dataclass(frozen=True)
class Limits:
    max_concurrent_calls: int
    calls_per_second: float
    pace_key: str  # the account the pace is kept for: its own calls-per-second limit
    row: ProviderAccount | None = None  # where they come from; None: the settings


def account_of(provider_name: str) -> str:
    """The account the settings name for a provider (Twilio's account SID; '' for others)."""
    return settings.TWILIO_ACCOUNT_SID if provider_name == "twilio" else ""


def current_limits(provider_name: str) -> Limits:
    """The limits of the provider account in use: its own row (by account id), else the row
    for the provider with no account named, else the settings. One query."""
    account = account_of(provider_name)
    rows = ProviderAccount.objects.filter(provider=provider_name, account__in={account, ""})
    row = max(rows, key=lambda r: r.account == account, default=None)
    cap = settings.DIALLER_GLOBAL_MAX_CONCURRENT_CALLS
    pace = settings.DIALLER_CALLS_PER_SECOND
    if row is not None:
        cap = row.max_concurrent_calls if row.max_concurrent_calls is not None else cap
        pace = row.calls_per_second if row.calls_per_second is not None else pace
    return Limits(
        max_concurrent_calls=cap, calls_per_second=pace, pace_key=account or provider_name, row=row
    )


def save_provider_account(*, account: ProviderAccount, fields: dict, by=None) -> ProviderAccount:
    """Create or change a provider account's limits (ValidationError for values out of range
    or an account listed twice). The next tick uses them."""
    for name, value in fields.items():
        setattr(account, name, value)
    account.full_clean(exclude=["updated_by"])
    if by is not None and getattr(by, "is_authenticated", False):
        account.updated_by = by
    account.save()
    return account
