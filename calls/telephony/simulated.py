"""A provider that calls nobody: it plays the provider's and the callee's part through our real
webhooks, signed like Twilio's, so the demo and the end-to-end tests exercise the real path.

`place_call` returns a call SID at once; after a short random delay (SIMULATED_DELAY) the
call plays out: status callbacks (initiated, ringing, then busy / no-answer / failed, or
in-progress and completed with CallDuration and AnsweredBy), and for answered calls the survey:
fetch the voice TwiML, answer each <Gather> by posting to its action URL (or follow the
<Redirect> after it, which is what silence does), until the TwiML hangs up. The outcome of each
call is drawn from SIMULATED_OUTCOMES (weights).

The requests go through Django's test client, in-process, so nothing needs the web server to
be reachable. In real use each call plays on its own daemon thread; tests build the provider
with `background=False` and drive it with `run_pending()` or `play()`, deterministically with a
seeded `rng` — no sleeping."""

import email.utils
import logging
import random
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.db import connections
from django.test import Client
from django.urls import resolve
from django.utils import timezone

from calls.models import CallAttempt
from calls.telephony.base import CallUrls, ProviderCall, call_urls
from calls.webhooks.signatures import sign
from calls.webhooks.survey import Reply, validate_answer
from campaigns.models import Question

log = logging.getLogger(__name__)

OUTCOMES = ("completed", "busy", "no_answer", "machine", "hangup", "failed", "opt_out", "callback")
SPOKEN_ANSWERS = ("Very satisfied", "It was fine", "Not really", "The delivery was late")
MAX_STEPS = 60  # a survey that never hangs up is our bug; stop rather than loop forever
KEPT_CALLS = 100_000  # the calls fetch_status remembers


class SimulationError(Exception):
    """A webhook answered the simulated provider with an error (raised in synchronous mode)."""


@dataclass
class PlannedCall:
    attempt_id: object
    sid: str
    urls: CallUrls
    outcome: str
    wait: float


@dataclass
class Playback:
    """One call being played: the parameters every request carries, and the running clock."""

    attempt: CallAttempt
    sid: str
    urls: CallUrls
    outcome: str
    sequence: int = 0
    seconds: float = 0.0
    answered_by: str = ""
    hang_up_after: int = 1  # "hangup" outcome: questions answered before hanging up
    questions_seen: list[int] = field(default_factory=list)

    def common(self) -> dict:
        to = self.attempt.contact.phone
        caller = self.attempt.caller_id or settings.TWILIO_FROM_NUMBER or "+15005550006"
        return {
            "AccountSid": settings.TWILIO_ACCOUNT_SID or "AC" + "0" * 32,
            "ApiVersion": "2010-04-01",
            "CallSid": self.sid,
            "Direction": "outbound-api",
            "From": caller,
            "Caller": caller,
            "To": to,
            "Called": to,
        }


class SimulatedProvider:
    name = "simulated"

    def __init__(
        self,
        *,
        rng: random.Random | None = None,
        delay: tuple[float, float] | None = None,
        outcomes: dict[str, int] | None = None,
        background: bool = True,
    ):
        self.rng = rng or random.Random()
        self.delay = tuple(delay if delay is not None else settings.SIMULATED_DELAY)
        mix = outcomes if outcomes is not None else settings.SIMULATED_OUTCOMES
        unknown = set(mix) - set(OUTCOMES)
        if unknown:
            log.warning("SIMULATED_OUTCOMES: ignoring unknown outcomes %s", sorted(unknown))
        self.outcomes = {k: int(v) for k, v in mix.items() if k in OUTCOMES and int(v) > 0}
        if not self.outcomes:
            raise ValueError(f"SIMULATED_OUTCOMES needs a positive weight for one of {OUTCOMES}.")
        self.background = background
        self.calls: dict[str, ProviderCall] = {}  # what fetch_status says, by SID
        self.pending: list[PlannedCall] = []
        self.cancelled: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # --- the provider protocol ---------------------------------------------------------------

    def place_call(self, attempt: CallAttempt, urls: CallUrls) -> str:
        with self._lock:
            sid = self._new_sid()
            outcome = self.rng.choices(list(self.outcomes), weights=list(self.outcomes.values()))[0]
            wait = self.rng.uniform(*self.delay)
        call = PlannedCall(attempt.pk, sid, urls, outcome, wait)
        self._note(sid, ProviderCall("queued"))
        if self.background:
            thread = threading.Thread(
                target=self._play_later, args=(call,), name=f"simulated-{sid[:10]}", daemon=True
            )
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()
        else:
            with self._lock:
                self.pending.append(call)
        return sid

    def cancel(self, sid: str) -> None:
        with self._lock:
            self.cancelled.add(sid)

    def fetch_status(self, provider_call_id: str) -> ProviderCall | None:
        """The last status this provider sent for the call (None: not one of its calls)."""
        with self._lock:
            return self.calls.get(provider_call_id)

    def _note(self, sid: str, call: ProviderCall) -> None:
        with self._lock:
            self.calls[sid] = call
            while len(self.calls) > KEPT_CALLS:  # the oldest first (dicts keep their order)
                del self.calls[next(iter(self.calls))]

    # --- playing calls -----------------------------------------------------------------------

    def run_pending(self) -> list[str]:
        """Play every call placed so far, one after the other (synchronous mode); returns
        their outcomes."""
        with self._lock:
            calls, self.pending = self.pending, []
        return [self._play_planned(call) for call in calls]

    def play(
        self,
        attempt: CallAttempt,
        *,
        outcome: str = "completed",
        sid: str | None = None,
        urls: CallUrls | None = None,
    ) -> str:
        """Play one call of `attempt` with the given outcome, now, in this thread."""
        sid = sid or attempt.provider_call_sid or self._new_sid()
        call = PlannedCall(attempt.pk, sid, urls or call_urls(attempt), outcome, 0)
        return self._play_planned(call)

    def _new_sid(self) -> str:
        return f"CA{self.rng.getrandbits(128):032x}"

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the calls playing in the background to end (shutdown, tests)."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def _play_later(self, call: PlannedCall) -> None:
        try:
            time.sleep(call.wait)  # the network's and the callee's delay, in real use only
            self._play_planned(call)
        except Exception:
            log.exception("simulated call %s failed", call.sid)
        finally:
            connections.close_all()  # this thread's connections

    def _play_planned(self, call: PlannedCall) -> str:
        attempt = CallAttempt.objects.select_related("contact", "campaign").get(pk=call.attempt_id)
        playback = Playback(attempt, call.sid, call.urls, call.outcome)
        questions = attempt.campaign.questions.count()
        playback.hang_up_after = self.rng.randint(0, max(0, questions - 1))
        self._run(playback)
        log.info("simulated call %s to attempt %s: %s", call.sid, attempt.pk, call.outcome)
        return call.outcome

    def _run(self, p: Playback) -> None:
        outcome = p.outcome
        self._status(p, "initiated")
        if outcome == "failed":
            self._status(p, "failed", CallDuration="0")
            return
        self._status(p, "ringing")
        if p.sid in self.cancelled:
            self._status(p, "canceled", CallDuration="0")
            return
        if outcome in ("busy", "no_answer"):
            self._status(p, outcome.replace("_", "-"), CallDuration="0")
            return
        amd = p.attempt.machine_detection
        if amd:
            p.answered_by = "machine_end_beep" if outcome == "machine" else "human"
        answered = {"AnsweredBy": p.answered_by} if p.answered_by else {}
        self._status(p, "in-progress", **answered)
        twiml = self._post(p, p.urls.voice, {"CallStatus": "in-progress", **answered})
        self._follow(p, twiml)
        self._status(p, "completed", CallDuration=str(max(1, round(p.seconds))), **answered)

    def _follow(self, p: Playback, twiml: str) -> None:
        """Listen to the TwiML and answer each <Gather> as this callee would, until it ends."""
        for _ in range(MAX_STEPS):
            root = ET.fromstring(twiml)
            p.seconds += 0.4 * sum(len((el.text or "").split()) for el in root.iter("Say"))
            gather = root.find("Gather")
            if gather is None or root.find("Hangup") is not None:
                return
            question = self._question(p, gather.get("action"))
            reply = self._reply(p, question)
            p.questions_seen.append(question.position)
            if reply is None:  # hangs up
                return
            params = {"CallStatus": "in-progress"}
            if reply.is_silence:
                redirect = root.find("Redirect")
                if redirect is None:
                    return
                p.seconds += float(gather.get("timeout") or 5)
                twiml = self._post(p, redirect.text.strip(), params)
                continue
            p.seconds += 3
            if reply.digits:
                params["Digits"] = reply.digits
            else:
                params.update(SpeechResult=reply.speech, Confidence=f"{reply.confidence:.2f}")
            twiml = self._post(p, gather.get("action"), params)
        log.warning("simulated call %s: the survey did not end after %d steps", p.sid, MAX_STEPS)

    def _question(self, p: Playback, action: str) -> Question:
        position = resolve(urlsplit(action).path).kwargs["position"]
        return Question.objects.get(campaign_id=p.attempt.campaign_id, position=position)

    def _reply(self, p: Playback, question: Question) -> Reply | None:
        """This callee's reply to `question`: None hangs up."""
        campaign = p.attempt.campaign
        asked_before = question.position in p.questions_seen
        outcome = p.outcome
        if outcome == "machine":  # a machine nobody detected: it records, then stops
            return Reply() if not asked_before else None
        if outcome == "hangup" and len(set(p.questions_seen)) >= p.hang_up_after:
            return None
        if outcome == "opt_out" and (len(set(p.questions_seen)) >= 1 or self.rng.random() < 0.3):
            return Reply(digits=campaign.opt_out_key)
        if outcome == "callback" and campaign.callback_key:
            return Reply(digits=campaign.callback_key)
        if not asked_before:
            roll = self.rng.random()
            if roll < 0.08:
                return Reply()  # silence: the question is asked again
            if roll < 0.2:
                invalid = self._invalid_answer(question)
                if invalid is not None:
                    return invalid
        return self._valid_answer(question)

    def _reserved(self, question: Question) -> set[str]:
        return {question.campaign.opt_out_key, question.campaign.callback_key} - {""}

    def _valid_answer(self, question: Question) -> Reply:
        kind = question.kind
        if kind == Question.Kind.SPEECH:
            return Reply(
                speech=self.rng.choice(SPOKEN_ANSWERS), confidence=self.rng.uniform(0.6, 0.98)
            )
        if kind == Question.Kind.YES_NO:
            return Reply(digits=self.rng.choice(["1", "2"]))
        if kind == Question.Kind.SCALE:
            choices = [str(n) for n in range(question.min_value, question.max_value + 1)]
        elif question.valid_answers:
            choices = list(question.valid_answers)
        else:
            choices = [str(self.rng.randrange(10**question.max_digits)) for _ in range(5)]
        choices = [c for c in choices if c not in self._reserved(question)] or choices
        return Reply(digits=self.rng.choice(choices))

    def _invalid_answer(self, question: Question) -> Reply | None:
        candidates = [
            key
            for key in "0123456789*"
            if key not in self._reserved(question)
            and validate_answer(question, Reply(digits=key)) is None
        ]
        return Reply(digits=self.rng.choice(candidates)) if candidates else None

    # --- requests ----------------------------------------------------------------------------

    def _status(self, p: Playback, status: str, **extra) -> None:
        params = {
            "CallStatus": status,
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(p.sequence),
            "Timestamp": email.utils.format_datetime(timezone.now()),
            **extra,
        }
        p.sequence += 1
        duration = extra.get("CallDuration")
        self._note(
            p.sid,
            ProviderCall(
                status=status,
                duration=int(duration) if duration else None,
                answered_by=extra.get("AnsweredBy") or None,
                ended_at=timezone.now() if duration else None,
            ),
        )
        self._post(p, p.urls.status_callback, params)

    def _post(self, p: Playback, url: str, params: dict) -> str:
        """POST form-encoded `params` to our webhook `url`, signed as Twilio signs it."""
        params = {**p.common(), **params}
        base = settings.PUBLIC_BASE_URL
        parts = urlsplit(url)
        path = url[len(base) :] if url.startswith(base) else parts.path
        path = path or "/"
        client = Client(raise_request_exception=not self.background)
        response = client.post(
            path,
            data=urlencode(params),
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": sign(url, params), "Host": parts.netloc},
            secure=parts.scheme == "https",
        )
        if response.status_code >= 300:
            message = f"{url} answered {response.status_code} to the simulated provider"
            if not self.background:
                raise SimulationError(message)
            log.warning(message)
            return "<Response><Hangup/></Response>"
        return response.content.decode()
