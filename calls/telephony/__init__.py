"""Telephony providers behind one small protocol (see base.py)."""

from calls.telephony.base import (
    CallUrls,
    NumberRejected,
    Provider,
    ProviderError,
    ProviderUnavailable,
    call_urls,
    get_provider,
)

__all__ = [
    "CallUrls",
    "NumberRejected",
    "Provider",
    "ProviderError",
    "ProviderUnavailable",
    "call_urls",
    "get_provider",
]
