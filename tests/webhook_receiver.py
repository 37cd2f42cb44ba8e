"""A live HTTP receiver for outbound webhook tests: a real server on 127.0.0.1 on a thread."""

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


@dataclass
class Receiver:
    url: str = ""
    status: int = 200  # what it answers
    headers: dict = field(default_factory=dict)  # extra headers it answers with
    hold: threading.Event | None = None  # when set: wait on it before answering
    received: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)  # set on each request


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a sender that timed out and hung up: expected in the timeout test


@contextmanager
def running_receiver():
    """A receiver on a free port of 127.0.0.1 (the `receiver` fixture)."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            state.received.append(Received(self.path, dict(self.headers), self.rfile.read(length)))
            state.arrived.set()
            if state.hold is not None:
                state.hold.wait(5)
            self.send_response(state.status)
            for name, value in state.headers.items():
                self.send_header(name, value)
            body = b"ok" if state.status < 300 else b"receiver says no"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/voicesurvey"
    try:
        yield state
    finally:
        if state.hold is not None:
            state.hold.set()
        server.shutdown()
        server.server_close()
