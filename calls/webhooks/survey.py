"""The survey a callee hears, as TwiML, and what their key presses and words do.

The voice webhook (`start_survey`) answers a call with the intro and the first question this
contact has not answered yet (a later call resumes where an earlier one stopped); each
<Gather> posts to the gather webhook (`answer_question`), which stores the answer at once,
re-prompts on invalid input or silence a limited number of times, and goes on to the next
question, then the closing message and a hang-up. The opt-out key and the call-back key work at
any question. Prompts are rendered from the contact when the call happens."""

import datetime as dt
import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from twilio.twiml.voice_response import VoiceResponse

from calls.booking.scheduling import book_callback
from calls.db import prepared
from calls.hook_events import opted_out_on_call, survey_completed
from calls.models import Answer, CallAttempt, CallEvent
from calls.outcomes import settle_late_answer
from calls.webhooks.status import answered_by_from_twilio
from campaigns.models import Campaign, Question
from contacts.models import Contact, Exclusion, exclude_listed_contacts

log = logging.getLogger(__name__)

# Seconds the callee has to start answering once a question has been read.
GATHER_TIMEOUT = 6

PLACEHOLDER = re.compile(r"\{([^{}|]*)(?:\|([^{}]*))?\}")
HIDDEN_PLACEHOLDERS = {"phone"}  # never read a number out to whoever picks up


# --- Rendering -------------------------------------------------------------------------------


def placeholder_values(contact: Contact | None) -> dict[str, str]:
    """What `{key}` may name: the contact's attributes, its name and external id."""
    if contact is None:
        return {}
    values = {
        str(key): str(value)
        for key, value in (contact.attributes or {}).items()
        if value is not None and not isinstance(value, dict | list)
    }
    if contact.name:
        values["name"] = contact.name
    if contact.external_id:
        values["external_id"] = contact.external_id
    for key in HIDDEN_PLACEHOLDERS:
        values.pop(key, None)
    return values


def render_text(text: str, contact: Contact | None) -> str:
    """Fill `{key}` and `{key|fallback}` from the contact. A blank or missing value takes the
    fallback, or nothing; a stray brace is dropped, so a typo never reaches the callee."""
    values = placeholder_values(contact)

    def fill(match: re.Match) -> str:
        value = values.get(match.group(1).strip(), "").strip()
        return value or (match.group(2) or "").strip()

    rendered = PLACEHOLDER.sub(fill, text or "").replace("{", "").replace("}", "")
    # An empty value leaves a gap: "Thank you {name}." -> "Thank you." not "Thank you ."
    rendered = re.sub(r"\s+([.,!?;:])", r"\1", rendered)
    return re.sub(r"\s{2,}", " ", rendered).strip()


# --- TwiML building blocks ---------------------------------------------------------------------


def gather_url(call_id: str, position: int, *, retry: int = 0) -> str:
    """The gather webhook for one question; `retry` counts the re-prompts already given (it
    travels in the URL, which the provider signs, so a replay cannot reset it)."""
    url = f"{settings.PUBLIC_BASE_URL}/webhooks/gather/{call_id}/{position}/"
    return f"{url}?retry={retry}" if retry else url


@dataclass
class Script:
    """One call's TwiML under construction, in the campaign's voice and language."""

    campaign: Campaign
    contact: Contact | None
    call_id: str
    response: VoiceResponse

    def say(self, text: str, parent=None) -> None:
        text = render_text(text, self.contact)
        if text:
            (parent or self.response).say(
                text, voice=self.campaign.voice, language=self.campaign.language
            )

    def ask(self, question: Question, *, retry: int = 0, before: str = "", redirect=True):
        """The question inside a <Gather>; after it, a redirect to the same gather URL with no
        input, which is how silence reaches us (Twilio goes on past a <Gather> left empty)."""
        action = gather_url(self.call_id, question.position, retry=retry)
        options = {"action": action, "method": "POST", "timeout": GATHER_TIMEOUT}
        if question.kind == Question.Kind.SPEECH:
            # Keys still work on a spoken question: the opt-out and call-back keys.
            options.update(
                input="dtmf speech",
                speech_timeout="auto",
                num_digits=1,
                language=self.campaign.language,
            )
        else:
            options["input"] = "dtmf"
            options["num_digits"] = question.max_digits
            if question.max_digits > 1:
                reserved = {self.campaign.opt_out_key, self.campaign.callback_key}
                options["finish_on_key"] = "#" if "#" not in reserved else ""
        gather = self.response.gather(**options)
        if before:
            self.say(before, gather)
        self.say(question.prompt, gather)
        if redirect:
            self.response.redirect(action, method="POST")

    def hang_up(self, text: str = "") -> None:
        if text:
            self.say(text)
        self.response.hangup()


def script_for(attempt: CallAttempt) -> Script:
    return Script(attempt.campaign, attempt.contact, attempt.call_id, VoiceResponse())


@dataclass
class Progress:
    """The campaign's questions (by position) and those this contact has answered on any call:
    read with the attempt (survey_load) or, when not given, here."""

    questions: list[Question]
    answered: set[int]

    def question_at(self, position: int) -> Question:
        for question in self.questions:
            if question.position == position:
                return question
        raise Question.DoesNotExist(f"No question at position {position}.")


def load_progress(attempt: CallAttempt) -> Progress:
    answered = Answer.objects.filter(attempt__contact=attempt.contact_id)
    return Progress(
        questions=list(Question.objects.filter(campaign=attempt.campaign_id).order_by("position")),
        answered=set(answered.values_list("question_id", flat=True)),
    )


def next_question(attempt: CallAttempt, *, after: int, progress: Progress) -> Question | None:
    """The first question past `after` that this contact has not answered on any call."""
    for question in progress.questions:
        if question.position > after and question.pk not in progress.answered:
            return question
    return None


def update_attempt(attempt: CallAttempt, **values) -> None:
    """Set columns of the attempt's row (and the instance): a prepared statement on PostgreSQL."""
    if connection.vendor == "postgresql":
        columns = ", ".join(
            f'"{CallAttempt._meta.get_field(name).column}" = %({name})s' for name in values
        )
        prepared.execute(
            f'UPDATE "{CallAttempt._meta.db_table}" SET {columns} WHERE id = %(pk)s',
            {**values, "pk": attempt.pk},
        )
    else:
        CallAttempt.objects.filter(pk=attempt.pk).update(**values)
    for name, value in values.items():
        setattr(attempt, name, value)


def store_answer(attempt: CallAttempt, question: Question, **values) -> bool:
    """The answer to `question` on this call, unless it has one already (a replayed request):
    whether it was stored."""
    if connection.vendor == "postgresql":
        row = prepared.fetch_one(
            INSERT_ANSWER, {**values, "attempt": attempt.pk, "question": question.pk}
        )
        return row is not None
    _, created = Answer.objects.get_or_create(attempt=attempt, question=question, defaults=values)
    return created


INSERT_ANSWER = f"""
INSERT INTO "{Answer._meta.db_table}"
       (attempt_id, question_id, raw_input, value, confidence, answered_at)
VALUES (%(attempt)s, %(question)s, %(raw_input)s, %(value)s, %(confidence)s, %(answered_at)s)
ON CONFLICT (attempt_id, question_id) DO NOTHING RETURNING id
"""


def continue_survey(
    attempt: CallAttempt, script: Script, *, after: int, progress: Progress | None
) -> None:
    """Ask the next unanswered question, or close the survey."""
    question = next_question(attempt, after=after, progress=progress or load_progress(attempt))
    if question is not None:
        script.ask(question)
        return
    update_attempt(attempt, survey_finished=True)
    survey_completed(attempt)
    script.hang_up(attempt.campaign.closing_message)


def log_event(attempt: CallAttempt, kind: str, message: str, *, now: dt.datetime) -> None:
    CallEvent.objects.create(attempt=attempt, kind=kind, message=message, actor="callee", at=now)


# --- The webhooks' domain functions ----------------------------------------------------------


@transaction.atomic(savepoint=False)
def start_survey(
    attempt: CallAttempt,
    *,
    answered_by: str | None,
    now: dt.datetime,
    progress: Progress | None = None,
) -> str:
    """TwiML for an answered call: the machine policy for an answering machine, else the intro
    and the first unanswered question."""
    campaign = attempt.campaign
    script = script_for(attempt)
    who = answered_by_from_twilio(answered_by)
    if who:
        update_attempt(attempt, answered_by=who)
    if who == CallAttempt.AnsweredBy.MACHINE:
        log_event(attempt, "machine", f"answering machine: {campaign.machine_policy}", now=now)
        if campaign.machine_policy == Campaign.MachinePolicy.VOICEMAIL:
            script.hang_up(campaign.voicemail_message)
        else:
            script.hang_up()
        return str(script.response)
    if attempt.opted_out:
        script.hang_up()
        return str(script.response)
    script.say(campaign.intro_message)
    continue_survey(attempt, script, after=0, progress=progress)
    return str(script.response)


@dataclass(frozen=True)
class Reply:
    """What the callee gave to a <Gather>: keys, or words with the recogniser's confidence."""

    digits: str = ""
    speech: str = ""
    confidence: float | None = None

    @property
    def is_silence(self) -> bool:
        return not self.digits and not self.speech


def validate_answer(question: Question, reply: Reply) -> tuple[str, str] | None:
    """(raw input, normalised value) when `reply` answers `question`, else None."""
    digits = reply.digits.strip()
    if question.kind == Question.Kind.SPEECH:
        text = reply.speech.strip()
        return (text, text[:500]) if text else None
    if not digits or not re.fullmatch(r"[0-9*#]+", digits):
        return None
    if question.kind == Question.Kind.YES_NO:
        value = {"1": "yes", "2": "no"}.get(digits)
        return (digits, value) if value else None
    if question.kind == Question.Kind.SCALE:
        if not digits.isdigit() or not question.min_value <= int(digits) <= question.max_value:
            return None
        return digits, str(int(digits))
    if len(digits) > question.max_digits:
        return None
    if question.valid_answers and digits not in question.valid_answers:
        return None
    return digits, digits


@transaction.atomic(savepoint=False)
def answer_question(
    attempt: CallAttempt,
    *,
    position: int,
    reply: Reply,
    retry: int,
    now: dt.datetime,
    progress: Progress | None = None,
) -> str:
    """TwiML after the callee answered (or not) question `position`.

    The answer counts even when the attempt has already ended: the callee gave it during the
    call, and under load its request can be processed after the final status callback. The
    caller holds the attempt's row lock (provider_webhook), so the end is either still to
    come, and its settlement sees the answer, or already settled, and settle_late_answer
    corrects it.

    Raises Question.DoesNotExist for a position the campaign does not have."""
    progress = progress or load_progress(attempt)
    if attempt.is_live:
        return _answer_question(attempt, position, reply, retry=retry, now=now, progress=progress)
    settled_as = attempt.outcome
    text = _answer_question(attempt, position, reply, retry=retry, now=now, progress=progress)
    state = settle_late_answer(attempt, settled_as=settled_as, now=now)
    if state:
        message = f"answer after the call ended: {settled_as} -> {attempt.outcome}; contact {state}"
        log_event(attempt, "late_answer", message, now=now)
    return text


def _answer_question(
    attempt: CallAttempt,
    position: int,
    reply: Reply,
    *,
    retry: int,
    now: dt.datetime,
    progress: Progress,
) -> str:
    campaign = attempt.campaign
    question = progress.question_at(position)
    script = script_for(attempt)
    if reply.digits and reply.digits == campaign.opt_out_key:
        opt_out(attempt, now=now)
        script.hang_up(campaign.opt_out_message)
        return str(script.response)
    if campaign.callback_key and reply.digits == campaign.callback_key:
        when = request_callback(attempt, now=now)
        delay = spoken_delay(round((when - now).total_seconds() / 60))
        script.hang_up(campaign.callback_message.replace("{delay}", delay))
        return str(script.response)

    valid = None if reply.is_silence else validate_answer(question, reply)
    if valid is not None:
        raw, value = valid
        confidence = reply.confidence if question.kind == Question.Kind.SPEECH else None
        created = store_answer(
            attempt, question, raw_input=raw, value=value, confidence=confidence, answered_at=now
        )
        progress.answered.add(question.pk)
        if not created:
            log.info("attempt %s: answer to question %s replayed", attempt.pk, position)
        continue_survey(attempt, script, after=position, progress=progress)
        return str(script.response)

    what = "no input" if reply.is_silence else f"invalid answer {reply.digits or reply.speech!r}"
    if retry < question.max_reprompts:
        log_event(attempt, "reprompt", f"question {position}: {what}", now=now)
        script.ask(question, retry=retry + 1, before=question.reprompt_message)
    else:
        log_event(attempt, "skipped", f"question {position}: {what}, moving on", now=now)
        continue_survey(attempt, script, after=position, progress=progress)
    return str(script.response)


def opt_out(attempt: CallAttempt, *, now: dt.datetime) -> Exclusion:
    """The callee asked never to be called again: a global do-not-call entry for the number
    (it may be there already, perhaps expired: it is made permanent), the attempt marked, and
    the number's still-callable contacts in every campaign excluded. The contact itself becomes
    `refused` when the call ends (settle_contact)."""
    contact = attempt.contact
    with transaction.atomic():
        exclusion, created = Exclusion.objects.get_or_create(
            phone=contact.phone,
            campaign=None,
            defaults={
                "source": Exclusion.Source.OPT_OUT,
                "reason": f"Opted out during a call of campaign {attempt.campaign.name!r}.",
            },
        )
        if not created and exclusion.expires_at is not None:
            Exclusion.objects.filter(pk=exclusion.pk).update(expires_at=None)
        CallAttempt.objects.filter(pk=attempt.pk).update(opted_out=True)
        exclude_listed_contacts([contact.phone], campaign_id=None, now=now)
        log_event(attempt, "opt_out", "added to the do-not-call list", now=now)
        opted_out_on_call(attempt, exclusion, now=now)
    attempt.opted_out = True
    return exclusion


@transaction.atomic(savepoint=False)
def request_callback(attempt: CallAttempt, *, now: dt.datetime) -> dt.datetime:
    """The callee asked to be called later: a one-off ScheduledCall after the campaign's
    callback delay, moved to the next time the calling windows allow. settle_contact also
    moves next_attempt_at there when the call ends; the booking is what dials."""
    when = book_callback(attempt=attempt, now=now).next_run_at
    CallAttempt.objects.filter(pk=attempt.pk).update(callback_requested_for=when)
    attempt.callback_requested_for = when
    log_event(attempt, "callback_requested", f"call back at {when.isoformat()}", now=now)
    return when


def spoken_delay(minutes: int) -> str:
    if minutes < 90:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60)
    if hours >= 36:
        return f"{round(hours / 24)} days"
    return f"{hours} hours"


def preview_survey(campaign: Campaign, contact: Contact | None = None) -> str:
    """The TwiML of the whole survey as `contact` would hear it (fallbacks when None): intro,
    every question in order, closing message. For the operator's preview."""
    script = Script(campaign, contact, "preview", VoiceResponse())
    script.say(campaign.intro_message)
    for question in campaign.questions.order_by("position"):
        script.ask(question, redirect=False)
    script.hang_up(campaign.closing_message)
    return str(script.response)
