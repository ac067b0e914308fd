"""Sign-in latency while registrations flood auth (issue 15, item 3).

1. A real developer signs in one request at a time, idle: p50/p99.
2. Registration capacity: registrations at `--capacity-concurrency` at a time for
   `--seconds`; accepted (202) per second is the capacity.
3. The flood: registrations offered at `--factor` × that capacity, or at `--rate` a second when
   given (the capacity without the global limit, measured in another run), in an open loop, each from its own
   made-up client address through X-Forwarded-For, so the per-address limit does not stop
   them), while the developer keeps signing in one request at a time: p50/p99 again, and what
   the flood was answered (202, 503 busy, 429, other).

Prints a table; nothing is asserted."""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import random
import secrets
import threading
import time
import urllib.error
import urllib.request


def post(url: str, body: dict, headers: dict | None = None) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            answer.read()
            return answer.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code
    except OSError:
        return 0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def registration(auth: str) -> int:
    suffix = secrets.token_hex(6)
    address = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    return post(f"{auth}/v1/register", {
        "email": f"flood-{suffix}@example.com", "password": "a long flood passphrase " + suffix,
        "project_name": f"flood {suffix}", "slug": f"flood_{suffix}"}, {"X-Forwarded-For": address})


def sign_ins(auth: str, email: str, password: str, stop: threading.Event, count: int | None = None) -> list[float]:
    times = []
    while not stop.is_set() and (count is None or len(times) < count):
        started = time.perf_counter()
        status = post(f"{auth}/v1/token?grant_type=password", {"email": email, "password": password})
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise SystemExit(f"a sign-in answered {status}")
        times.append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--auth", required=True)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--factor", type=float, default=10)
    parser.add_argument("--capacity-concurrency", type=int, default=4)
    parser.add_argument("--sign-ins", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0)
    args = parser.parse_args()

    email, password = f"real-{secrets.token_hex(4)}@example.com", "the real user's passphrase"
    if post(f"{args.auth}/v1/register", {"email": email, "password": password, "project_name": "real"}) != 202:
        raise SystemExit("the real developer could not register")

    idle = sign_ins(args.auth, email, password, threading.Event(), args.sign_ins)

    # Capacity: closed loop, a few at a time.
    accepted = 0
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds

    def capacity_worker() -> None:
        nonlocal accepted
        while time.monotonic() < deadline:
            if registration(args.auth) == 202:
                with lock:
                    accepted += 1
    threads = [threading.Thread(target=capacity_worker) for _ in range(args.capacity_concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    capacity = accepted / args.seconds

    # The flood: open loop at factor × capacity, while the real user signs in.
    rate = args.rate or max(1.0, capacity * args.factor)
    answers: dict[int, int] = {}
    stop = threading.Event()
    measured: list[float] = []
    signer = threading.Thread(target=lambda: measured.extend(sign_ins(args.auth, email, password, stop)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=256) as pool:
        signer.start()
        futures = []
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < args.seconds:
            due = int((time.monotonic() - started) * rate)
            while sent < due:
                futures.append(pool.submit(registration, args.auth))
                sent += 1
            time.sleep(0.002)
        stop.set()
        signer.join()
        for future in futures:
            status = future.result()
            answers[status] = answers.get(status, 0) + 1

    def row(name: str, values: list[float]) -> str:
        return f"| {name} | {len(values)} | {percentile(values, 50):.1f} | {percentile(values, 99):.1f} |"

    print(f"registration capacity: {capacity:.1f}/s accepted ({args.capacity_concurrency} at a time, {args.seconds:.0f} s)")
    print(f"flood: {sent} registrations offered at {rate:.1f}/s for {args.seconds:.0f} s; answered "
          + ", ".join(f"{status or 'no answer'}: {count}" for status, count in sorted(answers.items())))
    print()
    print("| sign-ins of a real developer, one at a time | n | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    print(row("idle", idle))
    print(row("during the flood", measured))
    print(f"\np99 during the flood / idle p99: {percentile(measured, 99) / percentile(idle, 99):.2f}")


if __name__ == "__main__":
    main()
