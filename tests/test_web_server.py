"""The web server the Dockerfile runs (granian), as a real process: a signed webhook coming
through a TLS-terminating proxy passes the signature check, a stop (SIGTERM, what `docker
stop` sends) answers the request in flight before the server exits, and its access log, when
an operator turns it on, shows no phone number.

No database is touched: a NUL in a signed request's parameters is refused (400) after the
signature check and before any statement, so a 400 is proof the signature passed."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = "https://dialler.example.com"
TOKEN = "web-server-test-token"
PROXY_HOST = "web-1.internal:8000"  # the Host a proxy in front passes on

pytestmark = pytest.mark.slow


def dockerfile_command() -> list[str]:
    """The Dockerfile's CMD (its exec form), as a list."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith("CMD ")]
    return json.loads(line.removeprefix("CMD "))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(request, tmp_path):
    """The Dockerfile's command on a free loopback port, from this virtualenv, with the options
    of an indirect parameter added; (process, port). Its output goes to tmp_path/server.log."""
    command = dockerfile_command() + getattr(request, "param", [])
    assert command[0] == "granian"
    port = free_port()
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    command[0] = str(Path(sys.executable).parent / command[0])
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "voicesurvey.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path}/never-queried.sqlite3",
        "SECRET_KEY": "web-server-test",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "web-1.internal,127.0.0.1",
        "PUBLIC_BASE_URL": PUBLIC,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    }
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        # Ready when every worker says so: granian stops only the workers already started, so a
        # SIGTERM during start-up would leave the late ones running (and the test waiting).
        workers = int(command[command.index("--workers") + 1])
        wait_for(
            lambda: all(
                f"Started worker-{n}\n" in server_log(tmp_path) for n in range(1, workers + 1)
            ),
            process,
            tmp_path,
        )
        yield process, port
    finally:
        # The whole process group: granian's workers outlive a killed master.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.close()


def server_log(tmp_path) -> str:
    return (tmp_path / "server.log").read_text()


def wait_for(condition, process, tmp_path, seconds: float = 60) -> None:
    """Poll `condition` until it holds; fail with the server's log if the server dies or it
    takes longer than `seconds` (a hang, not a slow machine)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, server_log(tmp_path)
        assert time.monotonic() < deadline, server_log(tmp_path)
        time.sleep(0.05)


def server_has_read(sock: socket.socket, port: int) -> bool:
    """The server accepted this connection and read everything sent so far: its end of it, in
    /proc/net/tcp, has a file (an inode: accepted) and nothing left in its receive queue."""
    client_port = sock.getsockname()[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queues, inode = fields[1], fields[2], fields[4], fields[9]
        if int(local.split(":")[1], 16) == port and int(remote.split(":")[1], 16) == client_port:
            return inode != "0" and int(queues.split(":")[1], 16) == 0
    return False


def http_request(
    port: int, path: str, body: bytes, *, method: str = "POST", headers: dict | None = None
) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {PROXY_HOST}",
        "X-Forwarded-Proto: https",
        "X-Forwarded-For: 203.0.113.9",
        "Content-Type: application/x-www-form-urlencoded",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def exchange(port: int, *parts: bytes, between=None) -> tuple[int, dict]:
    """Send the parts (calling `between(sock)` after the first), read the whole answer:
    (status, JSON body or {})."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        for n, part in enumerate(parts):
            if n == 1 and between:
                between(sock)
            sock.sendall(part)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    is_json = b"application/json" in head.lower()
    return status, json.loads(body) if is_json else {}


def signed_gather(port: int, *, signed_url: str, digits: str = "\x00") -> bytes:
    path = "/webhooks/gather/CA0000/2/?retry=1"
    params = {"CallSid": "CA0000", "CallStatus": "in-progress", "Digits": digits}
    signature = RequestValidator(TOKEN).compute_signature(signed_url, params)
    return http_request(
        port, path, urlencode(params).encode(), headers={"X-Twilio-Signature": signature}
    )


def test_a_signed_webhook_through_a_proxy_passes_the_signature_check(server):
    _, port = server
    # Signed over the public URL Twilio requested (query string included): the check passes
    # and the NUL is refused next, in the error shape.
    good = signed_gather(port, signed_url=f"{PUBLIC}/webhooks/gather/CA0000/2/?retry=1")
    status, body = exchange(port, good)
    assert (status, body["error"]["code"]) == (400, "invalid")
    # Signed over the URL the server itself was asked for (the proxy's host): refused.
    wrong = signed_gather(port, signed_url=f"http://{PROXY_HOST}/webhooks/gather/CA0000/2/?retry=1")
    status, body = exchange(port, wrong)
    assert (status, body["error"]["code"]) == (403, "bad_signature")
    # Without the query string it signed: refused too.
    partial = signed_gather(port, signed_url=f"{PUBLIC}/webhooks/gather/CA0000/2/")
    assert exchange(port, partial)[0] == 403


def test_a_stop_answers_the_request_in_flight(server, tmp_path):
    process, port = server
    message = signed_gather(port, signed_url=f"{PUBLIC}/webhooks/gather/CA0000/2/?retry=1")
    head, cut = message[: len(message) - 8], message[len(message) - 8 :]

    def stop_meanwhile(sock):
        # The request's head read by a worker (not waiting in the listen queue, which a stop
        # closes), then the stop under way while the rest is still to come.
        wait_for(lambda: server_has_read(sock, port), process, tmp_path)
        process.send_signal(signal.SIGTERM)
        wait_for(lambda: "Stopping worker-" in server_log(tmp_path), process, tmp_path)

    # Half a request sent, SIGTERM, the rest: it is answered, then the server exits.
    status, body = exchange(port, head, cut, between=stop_meanwhile)
    assert (status, body["error"]["code"]) == (400, "invalid")
    assert process.wait(timeout=30) == 0


@pytest.mark.parametrize("server", [["--access-log"]], indirect=True)
def test_an_access_log_turned_on_shows_no_phone_number(server, tmp_path):
    process, port = server
    path = "/webhooks/status/+12125550100/"
    assert (
        exchange(port, http_request(port, path + "?To=%2B12125550100", b"", method="GET"))[0] == 405
    )
    # granian writes the access line after the answer (a stop right away could lose it).
    wait_for(lambda: 'HTTP/1.1" 405' in server_log(tmp_path), process, tmp_path)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    log = server_log(tmp_path)
    assert '"GET /webhooks/status/+121*****100/ HTTP/1.1" 405' in log  # the access line
    assert "12125550100" not in log
