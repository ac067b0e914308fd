"""The owner project API end to end (issue 14), driven by bench-projects.sh: a developer made the
real way (auth's registration, then a sign-in) creates N projects with `POST /v1/projects`
(C at a time) and follows each on its Server-Sent Events stream; a webhook endpoint on this
machine (an http.server thread) receives the `project.ready` deliveries.

Per project: POST → the `ready` event read from the stream (the client's clock), and the
`ready` event read → its webhook received (the same clock: both are seen in this process).
Prints p50/p99/max of both; nothing is asserted. Standard library only."""

from __future__ import annotations

import argparse
import http.server
import json
import secrets
import socket
import statistics
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from bench_common import call


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


class Receiver(http.server.BaseHTTPRequestHandler):
    arrivals: dict[str, float] = {}
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        now = time.monotonic()
        event = json.loads(body)
        if event.get("type") == "project.ready":
            with Receiver.lock:
                Receiver.arrivals.setdefault(event["data"]["project_id"], now)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):  # quiet
        pass


def ready_on_stream(provisioning: str, token: str, project: str) -> float:
    """Reads the project's event stream until its `ready` event; returns when it was read."""
    request = urllib.request.Request(f"{provisioning}/v1/projects/{project}/events", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=300) as stream:
        event = None
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "project.status":
                data = json.loads(line[6:])
                if data["status"] == "ready":
                    return time.monotonic()
                if data["status"] == "failed":
                    raise RuntimeError(f"project {project} failed: {data}")
    raise RuntimeError(f"the stream of {project} ended before ready")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--auth", required=True)
    parser.add_argument("--provisioning", required=True)
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    suffix = secrets.token_hex(4)
    email, password = f"bench-{suffix}@example.com", "a long benchmark passphrase " + suffix
    call("POST", f"{args.auth}/v1/register", {"email": email, "password": password, "project_name": f"bench {suffix}",
                                              "slug": f"bench_{suffix}"})
    token = call("POST", f"{args.auth}/v1/token?grant_type=password", {"email": email, "password": password})["access_token"]
    owner = {"Authorization": f"Bearer {token}"}

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    call("POST", f"{args.provisioning}/v1/webhooks", {"url": f"http://127.0.0.1:{port}/hook", "events": ["project.ready"]}, owner)

    def one(index: int) -> tuple[str, float, float]:
        started = time.monotonic()
        accepted = call("POST", f"{args.provisioning}/v1/projects", {"name": f"bench {suffix} {index}", "slug": f"b{suffix}_{index}"}, owner)
        ready = ready_on_stream(args.provisioning, token, accepted["project_id"])
        return accepted["project_id"], started, ready

    began = time.monotonic()
    with ThreadPoolExecutor(args.concurrency) as pool:
        results = list(pool.map(one, range(args.projects)))
    wall = time.monotonic() - began
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with Receiver.lock:
            if all(project in Receiver.arrivals for project, _, _ in results):
                break
        time.sleep(0.05)
    server.shutdown()

    to_ready = [(ready - started) * 1000 for _, started, ready in results]
    webhook = [(Receiver.arrivals[project] - ready) * 1000 for project, _, ready in results if project in Receiver.arrivals]
    print(f"{args.projects} projects, {args.concurrency} at a time, {wall:.1f} s ({args.projects / wall:.1f} projects/s)")
    print(f"{'metric':<44} {'n':>5} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for name, values in (("POST /v1/projects → ready event on the stream", to_ready),
                         ("ready event read → project.ready webhook", webhook)):
        if values:
            print(f"{name:<44} {len(values):>5} {statistics.median(values):>9.1f} {percentile(values, 99):>9.1f} {max(values):>9.1f}")
    missing = args.projects - len(webhook)
    if missing:
        print(f"webhooks not received within 60 s: {missing}")


if __name__ == "__main__":
    main()
