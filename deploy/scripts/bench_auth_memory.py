"""Auth's memory under sign-ins with distinct emails of nearly 1 MiB each (issue 15, item 1):
RSS before, peak during and after `--requests` of them, `--concurrency` at a time. Each is
refused (400 invalid_grant) before it is counted, looked up or hashed; what is measured is that
nothing of it stays. Prints the figures; nothing is asserted."""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import sys
import time
import urllib.parse

sys.path.insert(0, __import__("os").path.dirname(__file__))
from bench_common import Sampler, rss  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--auth", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    url = urllib.parse.urlparse(args.auth)
    filler = b"a" * ((1 << 20) - 8 * 1024)
    password = json.dumps("p" * 2000).encode()

    def worker(offset: int) -> dict[int, int]:
        answers: dict[int, int] = {}
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        for index in range(offset, args.requests, args.concurrency):
            body = b'{"email":"' + str(index).encode() + filler + b'@example.com","password":' + password + b"}"
            connection.request("POST", "/v1/token?grant_type=password", body, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            answers[answer.status] = answers.get(answer.status, 0) + 1
        connection.close()
        return answers

    before = rss(args.pid)
    started = time.monotonic()
    answers: dict[int, int] = {}
    with Sampler(args.pid, interval=0.2) as sampler:
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            for result in pool.map(worker, range(args.concurrency)):
                for status, count in result.items():
                    answers[status] = answers.get(status, 0) + count
    elapsed = time.monotonic() - started
    after = rss(args.pid)
    mib = 1024 * 1024
    print(f"{args.requests} sign-ins with distinct emails of {len(filler) // 1024 + 12} KiB, {args.concurrency} at a time, "
          f"in {elapsed:.0f} s ({args.requests / elapsed:.0f}/s, {args.requests * len(filler) / elapsed / mib:.0f} MiB/s); answered "
          + ", ".join(f"{status}: {count}" for status, count in sorted(answers.items())))
    print(f"auth RSS: before {before / mib:.1f} MiB, peak {sampler.peak / mib:.1f} MiB, after {after / mib:.1f} MiB "
          f"(growth {(after - before) / mib:+.1f} MiB; the emails alone were {args.requests * len(filler) / mib / 1024:.1f} GiB)")


if __name__ == "__main__":
    main()
