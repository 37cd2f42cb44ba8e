"""A fake carrier speaking Twilio's REST API for calls, playing each call back over real HTTP.

    python -m bench.fake_carrier --port 8765 --account AC… --token … [--seed 1] [--chaos]

The API (what the `twilio` client calls; point TWILIO_API_BASE_URL at http://127.0.0.1:8765):
  POST /2010-04-01/Accounts/{AccountSid}/Calls.json         place a call (201, a Call resource)
  GET  /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json   fetch a call
  POST /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json   Status=canceled|completed: end it
with Twilio's JSON shapes, its error body ({code, message, more_info, status}) and codes: 20003
bad credentials (401), 20404 unknown call or account (404), 21201/21211 missing or invalid To,
21212/21213 invalid or missing From, 21205 missing or invalid Url, 20429/20503 while the chaos
outage lasts.

Each placed call is played back to the app as Twilio would: signed (X-Twilio-Signature, the
account's auth token) status callbacks initiated, ringing, then busy / no-answer / failed, or
in-progress and completed, each with its SequenceNumber; for an answered call the voice TwiML
is fetched (with AnsweredBy when MachineDetection was asked for), and each <Gather> answered by
posting Digits to its action URL until the TwiML hangs up; some callees hang up mid-survey.
Time is compressed: a call lasts a few seconds, not minutes.

--no-playback: calls are taken and recorded, nothing is played back (tests/test_several_machines.py
counts the dials).

--chaos: 10 % of status callbacks dropped, 10 % sent twice, 10 % delivered late (after the
ones that follow). POST /_bench/outage makes the API answer 429/503 for 30 s.

The bench reads what happened from /_bench/stats (latency per request kind, non-2xx, errors)
and /_bench/calls (every call: number, outcome, times, the answers given and whether the
survey reached its end). Latencies are measured here, from outside the app: queueing in
gunicorn's backlog included."""

import argparse
import asyncio
import base64
import email.utils
import random
import re
import secrets
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web
from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# The outcome mix, as weights: what a real list of numbers gives, roughly.
OUTCOMES = {
    "completed": 58,  # a human answers the whole survey
    "hangup": 8,  # a human hangs up mid-survey
    "machine": 8,
    "busy": 10,
    "no-answer": 12,
    "failed": 4,
}
WEBHOOK_TIMEOUT = 15.0  # seconds Twilio waits for a webhook's answer
SILENCE = 0.04  # share of <Gather>s left without an answer (the app re-prompts)
CHAOS_SHARE = 0.10  # of status callbacks: dropped, and again duplicated, and again late
OUTAGE_SECONDS = 30  # the API's 429/503 spell (POST /_bench/outage)


@dataclass
class Call:
    sid: str
    to: str
    from_: str
    url: str
    status_callback: str
    events: set[str]
    machine_detection: str
    outcome: str
    created: float
    status: str = "queued"
    sequence: int = 0
    ended: float | None = None
    answered_by: str | None = None
    answers: list[tuple[int, str]] = field(default_factory=list)  # (position, digits), 2xx
    survey_done: bool = False  # the TwiML hung up after the last answer
    finals_sent: list[str] = field(default_factory=list)
    final_dropped: bool = False
    task: asyncio.Task | None = None


class Carrier:
    def __init__(self, *, account: str, token: str, seed: int, chaos: bool, playback: bool = True):
        self.account = account
        self.token = token
        self.validator = RequestValidator(token)
        self.rng = random.Random(seed)
        self.chaos = chaos
        self.playback = playback
        self.outage_until = 0.0  # monotonic; POST /_bench/outage starts one
        self.calls: dict[str, Call] = {}
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter = Counter()  # (kind, http status or error)
        self.chaos_done: Counter = Counter()
        self.api: Counter = Counter()  # API answers by status
        self.session: ClientSession | None = None
        self.expected_auth = "Basic " + base64.b64encode(f"{account}:{token}".encode()).decode()

    # --- the REST API --------------------------------------------------------------------

    def in_outage(self) -> bool:
        return time.monotonic() < self.outage_until

    async def start_outage(self, request: web.Request) -> web.Response:
        self.outage_until = time.monotonic() + OUTAGE_SECONDS
        return web.json_response({"outage_seconds": OUTAGE_SECONDS})

    def refuse(self, status: int, code: int, message: str) -> web.Response:
        self.api[status] += 1
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return web.json_response(body, status=status)

    def check(self, request: web.Request) -> web.Response | None:
        """Twilio's refusals before anything else: credentials, account, the outage."""
        if request.headers.get("Authorization") != self.expected_auth:
            return self.refuse(401, 20003, "Authenticate")
        if request.match_info["account"] != self.account:
            return self.refuse(404, 20404, "The requested resource was not found")
        if self.in_outage():
            if self.rng.random() < 0.5:
                return self.refuse(429, 20429, "Too Many Requests")
            return self.refuse(503, 20503, "Service Unavailable")
        return None

    async def create_call(self, request: web.Request) -> web.Response:
        if refused := self.check(request):
            return refused
        form = await request.post()
        to, from_, url = form.get("To", ""), form.get("From", ""), form.get("Url", "")
        if not to:
            return self.refuse(400, 21201, "No 'To' number is specified")
        if not E164.match(to):
            return self.refuse(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not from_:
            return self.refuse(400, 21213, "'From' phone number is required.")
        if not E164.match(from_):
            return self.refuse(400, 21212, f"Invalid 'From' Phone Number: {from_}")
        if not url.startswith(("http://", "https://")):
            return self.refuse(400, 21205, "Url is not a valid URL")
        status_callback = form.get("StatusCallback", "")
        if status_callback and not status_callback.startswith(("http://", "https://")):
            return self.refuse(400, 21609, "Invalid StatusCallback URL")
        call = Call(
            sid="CA" + secrets.token_hex(16),
            to=to,
            from_=from_,
            url=url,
            status_callback=status_callback,
            events=set(form.getall("StatusCallbackEvent", [])) or {"completed"},
            machine_detection=form.get("MachineDetection", ""),
            outcome=self.rng.choices(list(OUTCOMES), weights=list(OUTCOMES.values()))[0],
            created=time.time(),
        )
        self.calls[call.sid] = call
        if self.playback:
            call.task = asyncio.create_task(self.play(call))
        self.api[201] += 1
        return web.json_response(self.resource(call), status=201)

    def find(self, request: web.Request) -> Call | web.Response:
        if refused := self.check(request):
            return refused
        call = self.calls.get(request.match_info["sid"])
        if call is None:
            return self.refuse(404, 20404, "The requested resource was not found")
        return call

    async def fetch_call(self, request: web.Request) -> web.Response:
        call = self.find(request)
        if isinstance(call, web.Response):
            return call
        self.api[200] += 1
        return web.json_response(self.resource(call))

    async def update_call(self, request: web.Request) -> web.Response:
        call = self.find(request)
        if isinstance(call, web.Response):
            return call
        form = await request.post()
        wanted = form.get("Status", "")
        if wanted not in ("canceled", "completed"):
            return self.refuse(400, 21218, f"Invalid value for Status: {wanted}")
        if call.status in ("queued", "initiated", "ringing", "in-progress"):
            if call.task:
                call.task.cancel()
            final = "canceled" if wanted == "canceled" and call.status != "in-progress" else None
            final = final or "completed"
            call.status = final
            asyncio.create_task(self.send_final(call, final))
        self.api[200] += 1
        return web.json_response(self.resource(call))

    def resource(self, call: Call) -> dict:
        """A Call resource as Twilio's API returns it."""
        created = email.utils.formatdate(call.created, usegmt=True).replace("GMT", "+0000")
        uri = f"/{API_VERSION}/Accounts/{self.account}/Calls/{call.sid}"
        return {
            "account_sid": self.account,
            "annotation": None,
            "answered_by": call.answered_by,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": created,
            "date_updated": created,
            "direction": "outbound-api",
            "duration": None if call.ended is None else str(self.duration(call)),
            "end_time": None,
            "forwarded_from": None,
            "from": call.from_,
            "from_formatted": call.from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": call.sid,
            "start_time": None,
            "status": call.status,
            "subresource_uris": {
                "notifications": f"{uri}/Notifications.json",
                "recordings": f"{uri}/Recordings.json",
            },
            "to": call.to,
            "to_formatted": call.to,
            "trunk_sid": None,
            "uri": f"{uri}.json",
        }

    # --- playing a call back -------------------------------------------------------------

    def duration(self, call: Call) -> int:
        return max(0, round((call.ended or time.time()) - call.created))

    def params(self, call: Call, status: str) -> dict:
        params = {
            "AccountSid": self.account,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": status,
            "Called": call.to,
            "Caller": call.from_,
            "Direction": "outbound-api",
            "From": call.from_,
            "To": call.to,
        }
        if call.answered_by:
            params["AnsweredBy"] = call.answered_by
        return params

    async def play(self, call: Call) -> None:
        rng = self.rng
        try:
            await asyncio.sleep(rng.uniform(0.05, 0.3))
            await self.progress(call, "initiated")
            await asyncio.sleep(rng.uniform(0.2, 0.8))
            await self.progress(call, "ringing")
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            if call.outcome in ("busy", "no-answer", "failed"):
                call.status = call.outcome
                await self.send_final(call, call.outcome)
                return
            if call.machine_detection:
                call.answered_by = "machine_start" if call.outcome == "machine" else "human"
            await self.progress(call, "in-progress")
            await self.survey(call)
            await self.send_final(call, "completed")
        except asyncio.CancelledError:  # cancelled or hung up through the API
            pass

    async def progress(self, call: Call, status: str) -> None:
        call.status = status
        if self.wants(call, status):
            await self.status_callback(call, status)

    def wants(self, call: Call, status: str) -> bool:
        event = {"in-progress": "answered"}.get(status, status)
        return bool(call.status_callback) and event in call.events

    async def survey(self, call: Call) -> None:
        """Fetch the voice TwiML and answer each <Gather> until it hangs up."""
        text = await self.webhook("voice", call.url, self.params(call, "in-progress"))
        hang_up_after = self.rng.randint(0, 2) if call.outcome == "hangup" else None
        answered = 0
        for _ in range(30):  # a survey that never ends is the app's bug; the call ends anyway
            if text is None:  # an error: Twilio says "an application error occurred"
                return
            gather, redirect, hangs_up = read_twiml(text)
            if gather is None:
                call.survey_done = hangs_up and call.answered_by != "machine_start"
                call.survey_done = call.survey_done and answered > 0
                return
            if hang_up_after is not None and answered >= hang_up_after:
                return
            await asyncio.sleep(self.rng.uniform(0.3, 1.5))  # the prompt is read, keys pressed
            params = self.params(call, "in-progress")
            if self.rng.random() < SILENCE:  # no input: Twilio follows the <Redirect>
                url = redirect or gather
                text = await self.webhook("gather", url, params)
                continue
            digits = self.rng.choice("12")
            params.update(Digits=digits, FinishedOnKey="", msg="Gather End")
            text = await self.webhook("gather", gather, params)
            if text is not None:
                call.answers.append((position_of(gather), digits))
                answered += 1

    async def send_final(self, call: Call, status: str) -> None:
        call.ended = call.ended or time.time()
        call.status = status
        if not self.wants(call, "completed"):
            return
        extra = {"CallDuration": str(self.duration(call))}
        if status in ("busy", "failed"):
            extra["SipResponseCode"] = "486" if status == "busy" else "404"
        call.finals_sent.append(status)
        await self.status_callback(call, status, extra)

    async def status_callback(self, call: Call, status: str, extra: dict | None = None) -> None:
        params = self.params(call, status)
        params.update(
            SequenceNumber=str(call.sequence),
            Timestamp=email.utils.formatdate(usegmt=True).replace("GMT", "+0000"),
            CallbackSource="call-progress-events",
            **(extra or {}),
        )
        call.sequence += 1
        if self.chaos:
            roll = self.rng.random()
            if roll < CHAOS_SHARE:
                self.chaos_done["dropped"] += 1
                if status not in ("initiated", "ringing", "in-progress"):
                    call.final_dropped = True
                return
            if roll < 2 * CHAOS_SHARE:
                self.chaos_done["duplicated"] += 1
                await self.webhook("status", call.status_callback, params)
            elif roll < 3 * CHAOS_SHARE:  # late: after the callbacks that follow it
                self.chaos_done["late"] += 1
                asyncio.create_task(self.late(call.status_callback, params))
                return
        await self.webhook("status", call.status_callback, params)

    async def late(self, url: str, params: dict) -> None:
        await asyncio.sleep(self.rng.uniform(2.0, 5.0))
        await self.webhook("status", url, params)

    async def webhook(self, kind: str, url: str, params: dict) -> str | None:
        """POST a signed webhook; its body on a 2xx, else None (counted by kind)."""
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)}
        started = time.perf_counter()
        try:
            async with self.session.post(url, data=params, headers=headers) as response:
                body = await response.text()
                status = response.status
        except TimeoutError:
            self.statuses[(kind, "timeout")] += 1
            return None
        except OSError as exc:
            self.statuses[(kind, type(exc).__name__)] += 1
            return None
        self.latencies[kind].append(time.perf_counter() - started)
        self.statuses[(kind, status)] += 1
        return body if 200 <= status < 300 else None

    # --- what the bench reads ------------------------------------------------------------

    async def stats(self, request: web.Request) -> web.Response:
        active = sum(1 for c in self.calls.values() if c.task and not c.task.done())
        return web.json_response(
            {
                "calls": len(self.calls),
                "active": active,
                "api": {str(k): v for k, v in self.api.items()},
                "latencies": self.latencies,
                "statuses": [[k, str(s), n] for (k, s), n in self.statuses.items()],
                "chaos": dict(self.chaos_done),
                "outcomes": Counter(c.outcome for c in self.calls.values()),
            }
        )

    async def call_list(self, request: web.Request) -> web.Response:
        return web.json_response(
            [
                {
                    "sid": c.sid,
                    "to": c.to,
                    "outcome": c.outcome,
                    "status": c.status,
                    "created": c.created,
                    "ended": c.ended,
                    "answers": c.answers,
                    "survey_done": c.survey_done,
                    "final_dropped": c.final_dropped,
                    "finals_sent": c.finals_sent,
                }
                for c in self.calls.values()
            ]
        )


def read_twiml(text: str) -> tuple[str | None, str | None, bool]:
    """(the <Gather>'s action, the <Redirect> after it, whether it ends with <Hangup/>)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None, None, False
    gather = root.find("Gather")
    redirect = root.find("Redirect")
    return (
        gather.get("action") if gather is not None else None,
        redirect.text.strip() if redirect is not None and redirect.text else None,
        root.find("Hangup") is not None,
    )


def position_of(action: str) -> int:
    """The question's position in a gather URL (…/webhooks/gather/<call_id>/<position>/)."""
    path = action.split("?", 1)[0].rstrip("/")
    return int(path.rsplit("/", 1)[1])


def application(carrier: Carrier, *, keep_alive: bool = False) -> web.Application:
    app = web.Application()
    base = f"/{API_VERSION}/Accounts/{{account}}/Calls"
    app.router.add_post(f"{base}.json", carrier.create_call)
    app.router.add_get(f"{base}/{{sid}}.json", carrier.fetch_call)
    app.router.add_post(f"{base}/{{sid}}.json", carrier.update_call)
    app.router.add_get("/_bench/stats", carrier.stats)
    app.router.add_get("/_bench/calls", carrier.call_list)
    app.router.add_post("/_bench/outage", carrier.start_outage)

    async def session(app):
        # A new connection per request (gunicorn's sync workers close each one anyway), or
        # connections kept open between requests (--keep-alive, for gthread workers). An idle
        # connection is dropped after 1 s, before the server's own keep-alive (gunicorn: 2 s)
        # closes it: reusing one the server is closing at that instant is a connection reset,
        # counted as a failed webhook (25 of them in a 50 calls/s run with aiohttp's 15 s).
        if keep_alive:
            connector = TCPConnector(limit=256, keepalive_timeout=1.0)
        else:
            connector = TCPConnector(limit=256, force_close=True)
        timeout = ClientTimeout(total=WEBHOOK_TIMEOUT)
        carrier.session = ClientSession(connector=connector, timeout=timeout)
        yield
        await carrier.session.close()

    app.cleanup_ctx.append(session)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--account", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chaos", action="store_true")
    parser.add_argument("--keep-alive", action="store_true", help="reuse webhook connections")
    parser.add_argument(
        "--no-playback", action="store_true", help="take calls, play nothing back (they stay up)"
    )
    args = parser.parse_args()
    carrier = Carrier(
        account=args.account,
        token=args.token,
        seed=args.seed,
        chaos=args.chaos,
        playback=not args.no_playback,
    )
    app = application(carrier, keep_alive=args.keep_alive)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
