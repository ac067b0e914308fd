"""Tenant fairness on auth (issue 15, item 4), run by bench-fairness.sh: tenant B's password
sign-ins, one at a time, idle and while tenant A floods `admin/audit/verify` and `admin/users`
with its secret key, side by side in one run: idle, flood, idle again. Prints each phase's
sign-in p50/p99/max and errors, and what A's flood was answered (status counts).

Tenant A is made big first (users and audit entries inserted with psql as the platform role,
which the tenant's grants allow), so that its reads cost something: a full verification reads
every entry, a deep page of admin/users skips over many rows."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request

from bench_common import call, project_keys


def timed(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict, float]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            answer.read()
            return answer.status, dict(answer.headers), time.perf_counter() - began
    except urllib.error.HTTPError as error:
        error.read()
        return error.code, dict(error.headers), time.perf_counter() - began
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return 0, {}, time.perf_counter() - began


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def signins(args, slug: str, key: str, n: int) -> tuple[list[float], dict[int, int]]:
    latencies, statuses = [], {}
    for _ in range(n):
        status, _, seconds = timed("POST", f"{args.auth}/v1/tenants/{slug}/token?grant_type=password",
                                   {"email": "bea@example.test", "password": "a long tenant passphrase"}, {"apikey": key})
        statuses[status] = statuses.get(status, 0) + 1
        if status == 200:
            latencies.append(seconds * 1000)
    return latencies, statuses


class Flood:
    """`workers` threads, each alternating A's audit/verify and a random page of admin/users."""

    def __init__(self, args, slug: str, secret: str, pages: int):
        self.args, self.slug, self.secret, self.pages = args, slug, secret, pages
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.statuses: dict[str, int] = {}
        self.without_retry_after = 0
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(args.flooders)]

    def run(self, worker: int) -> None:
        rng = random.Random(worker)
        n = 0
        while not self.stop.is_set():
            n += 1
            if (worker + n) % 2 == 0:
                path, kind = "/admin/audit/verify", "verify"
            else:
                path, kind = f"/admin/users?per_page=50&page={rng.randint(1, self.pages)}", "users"
            status, headers, _ = timed("GET", f"{self.args.auth}/v1/tenants/{self.slug}{path}", headers={"apikey": self.secret})
            with self.lock:
                label = f"{kind} {status}"
                self.statuses[label] = self.statuses.get(label, 0) + 1
                if status == 429 and not any(k.lower() == "retry-after" for k in headers):
                    self.without_retry_after += 1

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        time.sleep(1)  # under way before B is measured
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("auth", "provisioning", "token", "database"):
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--signins", type=int, default=200)
    parser.add_argument("--flooders", type=int, default=16)
    parser.add_argument("--users", type=int, default=50000)
    parser.add_argument("--audit", type=int, default=50000)
    args = parser.parse_args()

    a_slug, a_keys = project_keys(args)
    b_slug, b_keys = project_keys(args)
    call("POST", f"{args.auth}/v1/tenants/{b_slug}/admin/users",
         {"email": "bea@example.test", "password": "a long tenant passphrase"}, {"apikey": b_keys["secret"]})
    schema = f"tenant_{a_slug}"
    subprocess.run(["psql", args.database, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                    f"INSERT INTO {schema}.users (email, email_normalized) SELECT 'u' || n || '@example.test', 'u' || n || '@example.test' "
                    f"FROM generate_series(1, {args.users}) AS n; "
                    f"INSERT INTO {schema}.audit_log (actor, action, target) SELECT 'platform', 'imported', n::text "
                    f"FROM generate_series(1, {args.audit}) AS n; ANALYZE {schema}.users"], check=True)
    print(f"tenant A ({a_slug}): {args.users} users, {args.audit} audit entries; tenant B ({b_slug}): 1 user; "
          f"{args.flooders} flooding threads, {args.signins} sequential sign-ins of B per phase")

    signins(args, b_slug, b_keys["publishable"], 10)  # warm-up, not counted
    rows = []
    idle = signins(args, b_slug, b_keys["publishable"], args.signins)
    rows.append(("idle", *idle))
    with Flood(args, a_slug, a_keys["secret"], max(1, args.users // 50)) as flood:
        flooded = signins(args, b_slug, b_keys["publishable"], args.signins)
    rows.append(("A flooding", *flooded))
    rows.append(("idle again", *signins(args, b_slug, b_keys["publishable"], args.signins)))

    print(f"{'B sign-ins':<12} {'ok':>5} {'errors':>7} {'p50_ms':>8} {'p99_ms':>8} {'max_ms':>8}")
    for name, latencies, statuses in rows:
        errors = sum(count for status, count in statuses.items() if status != 200)
        if latencies:
            print(f"{name:<12} {len(latencies):>5} {errors:>7} {statistics.median(latencies):>8.1f} "
                  f"{percentile(latencies, 0.99):>8.1f} {max(latencies):>8.1f}")
        else:
            print(f"{name:<12} {0:>5} {errors:>7}")
        if errors:
            print(f"  {name}: answers {statuses}")
    idle_p50 = statistics.median(rows[0][1]) if rows[0][1] else float("nan")
    flood_p50 = statistics.median(rows[1][1]) if rows[1][1] else float("nan")
    idle_p99 = percentile(rows[0][1], 0.99) if rows[0][1] else float("nan")
    flood_p99 = percentile(rows[1][1], 0.99) if rows[1][1] else float("nan")
    print(f"B while A floods / B idle: p50 x{flood_p50 / idle_p50:.2f}, p99 x{flood_p99 / idle_p99:.2f}")
    total = sum(flood.statuses.values())
    print(f"A's flood: {total} answers: " + ", ".join(f"{label}: {count}" for label, count in sorted(flood.statuses.items()))
          + f"; 429 without Retry-After: {flood.without_retry_after}")


if __name__ == "__main__":
    main()
