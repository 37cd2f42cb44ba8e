"""The dialler tick: recover lost attempts, start and complete campaigns, claim, pace and dial.

May import calls.models, calls.outcomes, calls.db, calls.booking and calls.telephony;
never the doors (admin, API, webhooks).
"""
