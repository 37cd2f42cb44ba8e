"""The demo that `make run` loads: a login, and a running campaign the dialler can call now."""

import datetime as dt
import secrets
from dataclasses import dataclass

import phonenumbers
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from campaigns.models import Campaign, Question
from campaigns.windows import zones_open
from contacts.models import Contact

DEMO_CAMPAIGN = "Customer satisfaction (demo)"
DEMO_USERNAME = "admin"

# Regions with one zone each for the demo numbers; the loader keeps those where the calling
# window is open now, so the simulated calls start at once whenever the newcomer runs the demo.
# Their hours cover the whole day in every season: some zone is open at any instant.
DEMO_REGIONS = [
    ("US", "America/New_York"),
    ("US", "America/Los_Angeles"),
    ("GB", "Europe/London"),
    ("FR", "Europe/Paris"),
    ("IN", "Asia/Kolkata"),
    ("JP", "Asia/Tokyo"),
    ("AU", "Australia/Sydney"),
    ("NZ", "Pacific/Auckland"),
    ("BR", "America/Sao_Paulo"),
]


@dataclass
class DemoLogin:
    username: str
    password: str | None  # None: the user existed already and its password is not known here
    created: bool


def ensure_demo_superuser(password_file) -> DemoLogin:
    """Create the demo superuser with a random password, only when no superuser exists.

    The password is also kept in `password_file` (under var/, git-ignored) so a second
    `make run` can print it again."""
    User = get_user_model()
    if User.objects.filter(is_superuser=True).exists():
        known = password_file.read_text().strip() if password_file.exists() else None
        user = User.objects.filter(is_superuser=True).order_by("pk").first()
        return DemoLogin(user.get_username(), known, created=False)
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser(DEMO_USERNAME, "admin@example.com", password)
    password_file.parent.mkdir(exist_ok=True)
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    return DemoLogin(DEMO_USERNAME, password, created=True)


# The demo's window stays open at least this long after loading in the zones it picks, so the
# newcomer sees calls for a while rather than a window that shuts a minute later.
OPEN_FOR = dt.timedelta(hours=1)


def daytime_regions(campaign: Campaign, now: dt.datetime) -> list[tuple[str, str]]:
    """Demo regions where `campaign` may ring someone now and for the next OPEN_FOR (the
    dialler's own window rules); failing that, those open now."""

    def open_at(zone: str, at: dt.datetime) -> bool:
        return zones_open([zone], campaign=campaign, now=at)

    open_now = [(r, z) for r, z in DEMO_REGIONS if open_at(z, now)]
    return [(r, z) for r, z in open_now if open_at(z, now + OPEN_FOR)] or open_now


def demo_numbers(region: str, count: int, *, taken: set[str] = frozenset()) -> list[str]:
    """`count` valid mobile numbers of `region` not in `taken`, derived from libphonenumber's
    example (two zones of one country draw from the same numbers)."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    national = str(example.national_number)
    numbers, step = [], 0
    while len(numbers) < count and step < 1000:
        candidate = phonenumbers.PhoneNumber(
            country_code=example.country_code,
            national_number=int(national[:-3] + f"{(int(national[-3:]) + step) % 1000:03d}"),
        )
        step += 1
        if phonenumbers.is_valid_number(candidate):
            number = phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.E164)
            if number not in taken:
                numbers.append(number)
    return numbers


@transaction.atomic
def load_demo_campaign(*, now: dt.datetime, contacts: int = 24) -> tuple[Campaign, bool]:
    """Create the demo campaign (running, every day, 09:00-20:00 callee time) with three
    questions and contacts in zones where it is daytime now. Does nothing if it exists."""
    existing = Campaign.objects.filter(name=DEMO_CAMPAIGN).first()
    if existing:
        return existing, False
    campaign = Campaign.objects.create(
        name=DEMO_CAMPAIGN,
        description="Loaded by `make run`; the simulated provider plays the callees.",
        weekdays=[0, 1, 2, 3, 4, 5, 6],
        max_concurrent_calls=5,
        intro_message="Hello {name|there}, this is a short survey from Example Telecom.",
        closing_message="Thank you, {name|}. Goodbye.",
        callback_key="8",
    )
    Question.objects.bulk_create(
        [
            Question(
                campaign=campaign,
                position=1,
                kind=Question.Kind.YES_NO,
                prompt="Were you satisfied with your last call to us? Press 1 for yes, 2 for no.",
            ),
            Question(
                campaign=campaign,
                position=2,
                kind=Question.Kind.SCALE,
                min_value=1,
                max_value=5,
                prompt="On a scale of 1 to 5, how likely are you to recommend us?",
            ),
            Question(
                campaign=campaign,
                position=3,
                kind=Question.Kind.DIGITS,
                valid_answers=["1", "2", "3"],
                prompt="Which plan are you on? 1 for basic, 2 for plus, 3 for premium.",
            ),
        ]
    )
    # Never empty at any instant (tests/test_demo.py); the first region is only a safeguard.
    regions = daytime_regions(campaign, now) or DEMO_REGIONS[:1]
    names = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken"]
    rows = []
    per_region = -(-contacts // len(regions))
    for region, zone in regions:
        for number in demo_numbers(region, per_region, taken={row.phone for row in rows}):
            if len(rows) == contacts:
                break
            rows.append(
                Contact(
                    campaign=campaign,
                    phone=number,
                    name=f"{names[len(rows) % len(names)]} {len(rows) + 1}",
                    external_id=f"DEMO-{len(rows) + 1:03d}",
                    timezones=[zone],
                    attributes={"plan": "basic", "region": region},
                    next_attempt_at=now,
                )
            )
    for row in rows:
        row.fill_derived()
    Contact.objects.bulk_create(rows)
    campaign.start(now=now)
    return campaign, True


def admin_url() -> str:
    return f"{settings.PUBLIC_BASE_URL}/admin/"
