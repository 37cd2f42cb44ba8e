"""Settings, read from the environment only (django-environ); see .env.example for every knob."""

import datetime as dt
import os
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # optional; real environment variables win


def _local_secret_key() -> str:
    """A random key kept in var/ (git-ignored) so sessions survive restarts on a laptop."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(exist_ok=True)
        # Written whole, then renamed: processes starting side by side never read half a key.
        draft = path.with_name(f"secret_key.{os.getpid()}")
        draft.write_text(secrets.token_urlsafe(50))
        os.replace(draft, path)
    return path.read_text().strip()


def _weights(name: str, default: dict[str, int]) -> dict[str, int]:
    """`outcome=weight` pairs separated by commas (as .env.example writes them) or semicolons."""
    text = env.str(name, default="").strip()
    if not text:
        return default
    weights = {}
    for pair in text.replace(";", ",").split(","):
        key, sep, value = pair.partition("=")
        if not pair.strip():
            continue
        if not sep or not key.strip() or not value.strip().isdigit():
            raise ImproperlyConfigured(
                f"{name}: {pair.strip()!r} is not outcome=weight (e.g. completed=60,busy=10)."
            )
        weights[key.strip()] = int(value)
    return weights


SECRET_KEY = env.str("SECRET_KEY", default="") or _local_secret_key()
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "voicesurvey.accounts",  # API tokens, stored hashed (replaces rest_framework.authtoken)
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files served by us: /api/docs/ works offline
    "django_q",
    "campaigns",
    "contacts",
    "calls",
    "hooks",  # outbound webhooks to API clients; imports none of the apps above
    "axes",  # admin login lockout; last, so its admin sits below ours
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The provider's webhooks go straight to their view from here (what they need of the rest
    # included): none of the back office's middleware below runs for them.
    "voicesurvey.webhook_middleware.WebhookShortcutMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # admin static files without a proxy
    "voicesurvey.query_strings.RefuseNulInQueryMiddleware",  # 400 for a NUL in a page's query
    "voicesurvey.database_outage.DatabaseOutageMiddleware",  # 503, not 500, while the DB is down
    "django.contrib.sessions.middleware.SessionMiddleware",
    "voicesurvey.accounts.middleware.BackOfficeLocaleMiddleware",  # the browser's language
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "voicesurvey.accounts.middleware.OperatorTimeZoneMiddleware",  # admin times in the user's zone
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # turns a lockout into its 429 page; must come last
]

ROOT_URLCONF = "voicesurvey.urls"
WSGI_APPLICATION = "voicesurvey.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite is the embedded default. WAL lets the web server, the scheduler and the cluster read
# while one writes; IMMEDIATE transactions take the write lock up front, so two writers queue on
# the busy timeout instead of failing with "database is locked" half-way through a transaction.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=20),
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Django's cursors bind parameters on the client and never prepare; the few hand-written
    # hot statements ask to be prepared (calls.webhooks.status), which needs a threshold set. Behind
    # PgBouncer in transaction mode that needs PgBouncer 1.21+ with max_prepared_statements.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Covering indexes (INCLUDE) are a PostgreSQL speed-up; SQLite builds the same index without
# the extra columns, which is fine: silence the warning `migrate` prints about it there.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# --- Login lockout (django-axes) -------------------------------------------------------------
# The lockout backend comes first: it refuses a locked-out login before the password is
# checked. It only watches logins made over HTTP (see voicesurvey/accounts/lockout.py).
AUTHENTICATION_BACKENDS = [
    "voicesurvey.accounts.lockout.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15))
# Username and address together: a guesser is stopped on that account from that address, yet
# cannot lock an operator out from elsewhere (by username alone anyone could), nor lock out
# a whole office behind one NAT address (by address alone). "username" or "ip_address" alone
# are accepted here too (comma-separated parameters are combined).
AXES_LOCKOUT_PARAMETERS = [env.list("AXES_LOCKOUT_PARAMETERS", default=["username", "ip_address"])]
AXES_RESET_ON_SUCCESS = True
# Behind N reverse proxies the client's address is the N-th from the right of X-Forwarded-For;
# 0 (no proxy): REMOTE_ADDR. Set it behind a proxy, else every login comes from the proxy.
AXES_IPWARE_PROXY_COUNT = env.int("AXES_IPWARE_PROXY_COUNT", default=0) or None
if AXES_IPWARE_PROXY_COUNT:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]

# --- HTTPS (see docs/operating.md "Production settings") ----------------------------------
# Off by default so `make run` works on http://127.0.0.1; production turns them all on.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# The load balancer's health check may come over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Behind a TLS-terminating proxy: "HTTP_X_FORWARDED_PROTO,https". Without it every request
# (Twilio's webhooks too) looks like plain HTTP and SECURE_SSL_REDIRECT would redirect it.
SECURE_PROXY_SSL_HEADER = env.tuple("SECURE_PROXY_SSL_HEADER", default=None)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)

# The back office speaks the browser's language when it has a catalogue for it (locale/; the
# .mo files are committed, so nothing is compiled at install). The API and the webhooks always
# answer in English (voicesurvey.accounts.middleware.BackOfficeLocaleMiddleware).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"  # stored times are UTC; each operator may choose the zone the admin shows
USE_I18N = True
USE_TZ = True
FORMAT_MODULE_PATH = ["voicesurvey.formats"]  # ISO-ordered dates, 24-hour clock, zone named

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Phone numbers are masked in every log record, whoever logs it (voicesurvey.logs).
LOGGING_CONFIG = "voicesurvey.logs.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The twilio client logs each request's parameters at INFO, a dozen lines per call.
        "twilio.http_client": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # a line per login otherwise; lockouts still show
    },
}

# --- Telephony ------------------------------------------------------------------------------
# The public base URL Twilio reaches us at; signatures are checked against it (behind a proxy
# the request's own host is not the one Twilio signed).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
# Twilio's REST API; another base URL sends the same requests to a carrier speaking Twilio's
# API (the load bench's fake carrier: bench/fake_carrier.py).
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="https://api.twilio.com")
# "twilio" or "simulated"; empty picks twilio when credentials are set, else simulated.
TELEPHONY_PROVIDER = env.str("TELEPHONY_PROVIDER", default="") or (
    "twilio" if TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN else "simulated"
)
# Simulated provider: outcome mix as weights, and its delay range (seconds) before answering.
SIMULATED_OUTCOMES = _weights(
    "SIMULATED_OUTCOMES",
    default={"completed": 60, "busy": 10, "no_answer": 15, "machine": 8, "hangup": 5, "failed": 2},
)
SIMULATED_DELAY = env.tuple("SIMULATED_DELAY", cast=float, default=(0.5, 3.0))

# --- Dialler --------------------------------------------------------------------------------
DEFAULT_REGION = env.str("DEFAULT_REGION", default="US")  # for numbers written without +country
DEFAULT_CAMPAIGN_TIMEZONE = env.str("DEFAULT_CAMPAIGN_TIMEZONE", default="America/New_York")
# Project-wide legal calling window in the callee's local time (US TCPA: 08:00-21:00).
LEGAL_WINDOW_START = env.str("LEGAL_WINDOW_START", default="08:00")
LEGAL_WINDOW_END = env.str("LEGAL_WINDOW_END", default="21:00")
DIALLER_TICK_INTERVAL = env.float("DIALLER_TICK_INTERVAL", default=5.0)
DIALLER_GLOBAL_MAX_CONCURRENT_CALLS = env.int("DIALLER_GLOBAL_MAX_CONCURRENT_CALLS", default=100)
DIALLER_BATCH_SIZE = env.int("DIALLER_BATCH_SIZE", default=50)
DIALLER_CALLS_PER_SECOND = env.float("DIALLER_CALLS_PER_SECOND", default=1.0)
DIALLER_DIAL_THREADS = env.int("DIALLER_DIAL_THREADS", default=16)
# Seconds of dial slots the pace keeps when nothing dials (between two ticks' dialling): the
# next calls take them at once, so the time spent claiming does not lower the rate.
DIALLER_PACE_BANK_SECONDS = env.float("DIALLER_PACE_BANK_SECONDS", default=1.0)
# An attempt with no provider answer after this long is presumed lost (the dialler crashed).
DIALLER_DIAL_LEASE_SECONDS = env.int("DIALLER_DIAL_LEASE_SECONDS", default=120)
# Longest a live call may last before recovery closes it (Twilio's own cap is 4 hours).
DIALLER_MAX_CALL_SECONDS = env.int("DIALLER_MAX_CALL_SECONDS", default=4 * 3600)
# Minutes between two reconciles of the contact tallies with the contacts themselves, by each
# scheduler process (contacts.tallies; run_scheduler, and the django-q2 dialler schedule).
TALLY_RECONCILE_MINUTES = env.float("TALLY_RECONCILE_MINUTES", default=60.0)
# A live call nothing has been heard of for this long (no callback, no answer) is asked about
# at the provider: its final callback may have been dropped, and Twilio does not send it again.
DIALLER_QUIET_CALL_SECONDS = env.int("DIALLER_QUIET_CALL_SECONDS", default=300)
# At most this many calls are asked about per tick (the rest on the next ticks).
DIALLER_PROVIDER_CHECKS_PER_TICK = env.int("DIALLER_PROVIDER_CHECKS_PER_TICK", default=100)
SCHEDULED_CALL_MISFIRE_GRACE_SECONDS = env.int("SCHEDULED_CALL_MISFIRE_GRACE_SECONDS", default=300)

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "voicesurvey.accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # DjangoModelPermissions, plus view_<model> for reading (a view-only user reads only).
    "DEFAULT_PERMISSION_CLASSES": ["voicesurvey.api_common.ModelPermissions"],
    "DEFAULT_PAGINATION_CLASS": "voicesurvey.api_common.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    # JSON with limits (size, depth, NUL characters): bad input is a 4xx, never a 500.
    "DEFAULT_PARSER_CLASSES": [
        "voicesurvey.api_input.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "voicesurvey.api_schema.ApiSchema",
    "EXCEPTION_HANDLER": "voicesurvey.api_errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "voicesurvey API",
    "DESCRIPTION": "Outbound voice-survey dialler: campaigns, contacts, do-not-call list, calls.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema lists every door and field: for our own users (a token or the admin's session),
    # not for anyone who finds the URL.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": r"/api/v1",  # tags and operation ids per resource, not "v1"
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ContactStateEnum": "contacts.models.ContactState",
        "CallAttemptStatusEnum": "calls.models.CallAttemptStatus",
        "CampaignStatusEnum": "campaigns.models.CampaignStatus",
        "ScheduledCallStatusEnum": "calls.models.ScheduledCallStatus",
    },
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)
# Twilio's webhooks are a few hundred bytes; a larger body is refused (413) before it is read.
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=8192)
IMPORT_MAX_UPLOAD_BYTES = env.int("IMPORT_MAX_UPLOAD_BYTES", default=200 * 1024 * 1024)

# --- Outbound webhooks (hooks/, docs/webhooks-out.md) -------------------------------------------
# Deliveries to loopback and private addresses are refused unless this is on (local receivers).
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=DEBUG)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)  # connect, and read
# Minutes before each retry after a failed send; a delivery is given up after the last one.
WEBHOOK_RETRY_MINUTES = env.list(
    "WEBHOOK_RETRY_MINUTES", cast=int, default=[1, 5, 30, 120, 360, 720, 1440]
)
# A subscription is disabled once its endpoint has failed this many sends in a row over at
# least this many hours without one success.
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=10)
WEBHOOK_DISABLE_AFTER_HOURS = env.float("WEBHOOK_DISABLE_AFTER_HOURS", default=72)
WEBHOOK_SEND_THREADS = env.int("WEBHOOK_SEND_THREADS", default=8)
WEBHOOK_SWEEP_INTERVAL = env.float("WEBHOOK_SWEEP_INTERVAL", default=2.0)  # run_scheduler's sender
WEBHOOK_KEEP_DAYS = env.int("WEBHOOK_KEEP_DAYS", default=30)  # delivered/given-up rows kept

# A POST with an Idempotency-Key header (booking doors) answers the same again for that long.
IDEMPOTENCY_KEY_HOURS = env.int("IDEMPOTENCY_KEY_HOURS", default=24)

# --- django-q2 ------------------------------------------------------------------------------
# ORM broker by default (nothing else to run); Q_REDIS_URL switches the broker to Redis.
Q_CLUSTER = {
    "name": "voicesurvey",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 90,  # a tick task runs for just under a minute (see calls/dialler/qcluster.py)
    "retry": 120,  # must exceed timeout, or a slow task is handed out twice
    "catch_up": False,
    "orm": "default",
    "save_limit": 250,
}
if env.str("Q_REDIS_URL", default=""):
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = env.str("Q_REDIS_URL")
