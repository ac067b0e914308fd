"""What the Python benchmarks share (bench_storage.py, bench_realtime.py,
bench_realtime_changes.py): JSON calls, a project made the real way (auth's registration, then
provisioning until ready), a process's RSS and its peak."""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.request


def call(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read() or b"{}")


def project(args, key: str) -> tuple[str, str]:
    """A developer and a project through auth's registration (`args.auth`), followed on
    provisioning (`args.provisioning`, `args.token`) until ready; its slug and its `key`
    ("publishable" or "secret")."""
    slug, keys = project_keys(args)
    return slug, keys[key]


def project_keys(args) -> tuple[str, dict]:
    """As `project`, with all of its API keys ({"publishable": …, "secret": …})."""
    suffix = secrets.token_hex(4)
    slug = f"bench_{suffix}"
    accepted = call("POST", f"{args.auth}/v1/register", {
        "email": f"bench-{suffix}@example.com", "password": "a long benchmark passphrase " + suffix,
        "project_name": f"bench {suffix}", "slug": slug})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = call("GET", f"{args.provisioning}/v1/projects/{accepted['project_id']}", headers={"X-Service-Token": args.token})
        if status["status"] == "ready":
            revealed = call("GET", f"{args.provisioning}/v1/projects/{accepted['project_id']}/api-keys",
                            headers={"X-Service-Token": args.token})
            return slug, {key["kind"]: key["key"] for key in revealed["keys"]}
        if status["status"] == "failed":
            raise SystemExit(f"provisioning failed: {status}")
        time.sleep(0.2)
    raise SystemExit("the project did not become ready")


def rss(pid: int) -> int:
    """A process's resident set, in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Sampler:
    """Peak RSS of a process, sampled every `interval` seconds while in the `with` block."""

    def __init__(self, pid: int, interval: float = 0.02):
        self.pid, self.peak, self.interval = pid, rss(pid), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss(self.pid))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss(self.pid))
