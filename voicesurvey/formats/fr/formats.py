# The same ISO dates and 24-hour clock in French as in English (see ../en/formats.py).
from voicesurvey.formats.en.formats import *  # noqa: F403
