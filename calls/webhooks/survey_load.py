"""What the survey's webhooks read first: the attempt, locked, with its campaign and contact,
the campaign's questions and those the contact has answered; and the request logged.

On PostgreSQL that is one prepared statement: the ORM took longer to build these queries
than the database took to run them, on every voice and gather request. Elsewhere (SQLite) the
ORM does the same in several queries."""

import datetime as dt
import json

from django.db import connection

from calls.db import prepared
from calls.db.instances import model_instances, select_columns
from calls.models import Answer, CallAttempt, CallEvent
from calls.webhooks.status import ATTEMPTS, CAMPAIGNS, CONTACTS, EVENTS
from calls.webhooks.survey import Progress
from campaigns.models import Campaign, Question
from contacts.models import Contact

QUESTIONS, ANSWERS = f'"{Question._meta.db_table}"', f'"{Answer._meta.db_table}"'

LOCK_LOG_AND_READ = f"""
WITH attempt AS (
    SELECT * FROM {ATTEMPTS} WHERE call_id = %(call_id)s FOR UPDATE
), logged AS (
    INSERT INTO {EVENTS} (attempt_id, kind, message, payload, actor, "at")
    SELECT id, 'webhook', %(message)s, %(payload)s::jsonb, 'provider', %(now)s FROM attempt
)
SELECT {select_columns(CallAttempt, "attempt")}, {select_columns(Campaign, "campaign")},
       {select_columns(Contact, "contact")},
       (SELECT json_agg(q ORDER BY q.position) FROM {QUESTIONS} q
         WHERE q.campaign_id = attempt.campaign_id),
       ARRAY(SELECT answer.question_id FROM {ANSWERS} answer
               JOIN {ATTEMPTS} earlier ON earlier.id = answer.attempt_id
              WHERE earlier.contact_id = attempt.contact_id)
  FROM attempt
  JOIN {CAMPAIGNS} campaign ON campaign.id = attempt.campaign_id
  JOIN {CONTACTS} contact ON contact.id = attempt.contact_id
"""

QUESTION_FIELDS = [field.attname for field in Question._meta.concrete_fields]


def lock_and_log(
    call_id: str, *, message: str, payload: dict, now: dt.datetime
) -> tuple[CallAttempt, Progress | None] | None:
    """The attempt with our `call_id`, locked (the caller's transaction), its campaign and
    contact cached on it, the request stored as its CallEvent; and the survey's progress (None
    when the ORM path leaves it to be read when needed). None, with nothing written, when no
    attempt has that call id."""
    if connection.vendor != "postgresql":
        return _lock_and_log_orm(call_id, message=message, payload=payload, now=now)
    params = {"call_id": call_id, "message": message, "payload": json.dumps(payload), "now": now}
    row = prepared.fetch_one(LOCK_LOG_AND_READ, params)
    if row is None:
        return None
    *columns, questions, answered = row
    attempt, campaign, contact = model_instances(columns, CallAttempt, Campaign, Contact)
    CallAttempt._meta.get_field("campaign").set_cached_value(attempt, campaign)
    CallAttempt._meta.get_field("contact").set_cached_value(attempt, contact)
    if isinstance(questions, str):
        questions = json.loads(questions)
    return attempt, Progress(
        questions=[
            Question.from_db(connection.alias, QUESTION_FIELDS, [q[f] for f in QUESTION_FIELDS])
            for q in questions or []
        ],
        answered=set(answered),
    )


def _lock_and_log_orm(call_id: str, *, message: str, payload: dict, now: dt.datetime):
    attempts = CallAttempt.objects.select_for_update(of=("self",))
    attempt = attempts.select_related("campaign", "contact").filter(call_id=call_id).first()
    if attempt is None:
        return None
    CallEvent.objects.create(
        attempt=attempt, kind="webhook", message=message, payload=payload, actor="provider", at=now
    )
    return attempt, None
