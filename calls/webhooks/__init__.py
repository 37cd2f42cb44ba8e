"""The provider's doors: signed status callbacks, and the survey's voice and gather TwiML.

May import calls.models, calls.outcomes, calls.db and calls.booking (call-back requests).
"""
