"""Settings for the webhook benchmark's gunicorn: the project's, with a bare reference view."""

from voicesurvey.settings import *  # noqa: F403

ROOT_URLCONF = "bench.webhooks_urls"
DEBUG = False
