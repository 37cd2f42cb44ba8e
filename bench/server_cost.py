"""What the web server costs per request, without the database: CPU of the server's processes
(utime+stime from /proc, master and workers) per refused webhook (a status callback with a bad
signature: Django's whole stack, no statement), under gunicorn and granian with the
Dockerfile's options (bench_load.SERVERS), one after the other and alternating, so that a
neighbour's load falls on both alike.

    .venv/bin/python -m bench.server_cost [--requests 6000] [--rounds 3] [--clients 8]

Each round starts the server, sends --warmup requests, then --requests from --clients threads
over keep-alive connections (as a carrier reusing its connections does) and as many again on
a new connection each (Connection: close), and reads the CPU before and after each."""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

from bench.bench_load import (
    LOGS,
    ROOT,
    booted,
    descendants_of,
    free_port,
    read_stat,
    server_command,
    wait_for_port,
)

PATH = "/webhooks/status/00000000-0000-0000-0000-000000000000/"
BODY = b"CallSid=CA00000000000000000000000000000000&CallStatus=ringing&SequenceNumber=1"


def request(port: int, keep_alive: bool) -> bytes:
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        "X-Twilio-Signature: bm90IGEgc2lnbmF0dXJl\r\n"
        f"Content-Length: {len(BODY)}\r\n"
        + ("" if keep_alive else "Connection: close\r\n")
        + "\r\n"
    ).encode() + BODY


def read_response(sock: socket.socket, buffer: bytes) -> tuple[int, bytes]:
    """(status, what is left of the buffer) for one response with a Content-Length."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the headers")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the body")
        rest += chunk
    return status, rest[length:]


def client(port: int, n: int, keep_alive: bool, statuses: list) -> None:
    message = request(port, keep_alive)
    sock, buffer = None, b""
    for _ in range(n):
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", port))
            buffer = b""
        sock.sendall(message)
        status, buffer = read_response(sock, buffer)
        statuses.append(status)
        if not keep_alive:
            sock.close()
            sock = None
    if sock:
        sock.close()


def send(port: int, total: int, clients: int, keep_alive: bool) -> tuple[float, list]:
    statuses: list[int] = []
    threads = [
        threading.Thread(target=client, args=(port, total // clients, keep_alive, statuses))
        for _ in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, statuses


def server_cpu(pid: int) -> float:
    return sum(stat[1] for p in [pid, *descendants_of(pid)] if (stat := read_stat(p)))


def one_round(server: str, args) -> dict:
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "voicesurvey.settings",
        "DATABASE_URL": "sqlite:////tmp/vs_webcost_server_cost.sqlite3",  # never queried
        "DEBUG": "false",
        "SECRET_KEY": "server-cost-bench",
        "ALLOWED_HOSTS": "127.0.0.1",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "TWILIO_AUTH_TOKEN": "server-cost-token",
        "LOG_LEVEL": "ERROR",  # the refusal's warning line is not what is measured
    }
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / f"server-cost-{server}.log", "wb") as log:
        process = subprocess.Popen(
            server_command(server, port, args.workers, []),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, process, server)
        booted(lambda: [process.pid, *descendants_of(process.pid)])
        send(port, args.warmup, args.clients, keep_alive=True)  # every worker and thread up
        figures = {}
        for keep_alive in (True, False):
            before = server_cpu(process.pid)
            wall, statuses = send(port, args.requests, args.clients, keep_alive)
            cpu = server_cpu(process.pid) - before
            assert set(statuses) == {403}, set(statuses)
            figures["keep-alive" if keep_alive else "close"] = (
                cpu / len(statuses) * 1000,
                len(statuses) / wall,
            )
        return figures
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the workers too
            process.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="gunicorn,granian")
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--warmup", type=int, default=600)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    results: dict[tuple[str, str], list] = {}
    for n in range(args.rounds):
        for server in args.servers.split(","):
            load = os.getloadavg()[0]
            for mode, (cpu, rate) in one_round(server, args).items():
                results.setdefault((server, mode), []).append(cpu)
                print(
                    f"round {n + 1} {server:<9} {mode:<10} {cpu:6.3f} ms CPU per request, "
                    f"{rate:6.0f} requests/s (load average {load:.1f})",
                    flush=True,
                )
    print("median of the rounds, server CPU per refused webhook:")
    for (server, mode), values in results.items():
        print(f"  {server:<9} {mode:<10} {statistics.median(values):6.3f} ms")


if __name__ == "__main__":
    main()
