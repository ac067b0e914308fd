"""The measuring half of bench-storage.sh (which starts the services and nginx): a project made
the real way, then storage beside nginx on the same disk, alternating, the median of the rounds.

Standard library only, with curl (transfers, streamed from and to files or /dev/null) and wrk
(4 KiB GETs). Prints one table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import urllib.request

from bench_common import Sampler, call, project, rss

MIB = 1 << 20


def curl(*arguments: str) -> float:
    """Runs curl; returns its total time in seconds (it fails on any HTTP error)."""
    out = subprocess.run(["curl", "-sS", "--fail-with-body", "-o", "/dev/null", "-w", "%{time_total}", *arguments],
                         capture_output=True, text=True, check=True)
    return float(out.stdout)


def wrk(url: str, headers: dict, seconds: int, connections: int) -> float:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk saw {errors.group(1)} error answers from {url}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("storage", "auth", "provisioning", "token", "nginx", "nginx-root", "work", "database"):
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--storage-pid", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    slug, secret = project(args, "secret")
    auth = {"apikey": secret, "Authorization": "Bearer " + secret}
    auth_flags = [flag for name, value in auth.items() for flag in ("-H", f"{name}: {value}")]
    # Room for the 1 GiB objects whatever the default quota is (an operator's UPDATE: no route sets it).
    subprocess.run(["psql", args.database, "-X", "-q", "-c", f"UPDATE storage.tenants SET quota_bytes = {16 << 30} WHERE slug = '{slug}'"],
                   check=True)
    call("POST", f"{args.storage}/storage/v1/bucket", {"name": "bench"}, auth)

    rows, memory = [], []
    for label, size in (("10 MiB", 10 * MIB), ("1 GiB", 1 << 30)):
        source = os.path.join(args.work, f"source-{size}")
        with open(source, "wb") as out:
            for _ in range(size // MIB):
                out.write(os.urandom(MIB))
        times = {"storage up": [], "nginx up": [], "storage down": [], "nginx down": []}
        peak = 0
        before = rss(args.storage_pid)
        for round_ in range(args.rounds):
            name = f"object-{size}-{round_}"
            with Sampler(args.storage_pid) as sampler:
                times["storage up"].append(curl("-T", source, "-X", "POST", "-H", "Content-Type: application/octet-stream",
                                                *auth_flags, f"{args.storage}/storage/v1/object/bench/{name}"))
                times["storage down"].append(curl(*auth_flags, f"{args.storage}/storage/v1/object/bench/{name}"))
            peak = max(peak, sampler.peak)
            times["nginx up"].append(curl("-T", source, f"{args.nginx}/{name}"))
            times["nginx down"].append(curl(f"{args.nginx}/{name}"))
            # Free the disk as we go: each round writes the object twice.
            curl("-X", "DELETE", *auth_flags, f"{args.storage}/storage/v1/object/bench/{name}")
            os.remove(os.path.join(args.nginx_root, name))
        os.remove(source)
        for direction in ("up", "down"):
            ours = size / MIB / statistics.median(times[f"storage {direction}"])
            theirs = size / MIB / statistics.median(times[f"nginx {direction}"])
            rows.append((f"{label} {'upload' if direction == 'up' else 'download'} MiB/s", ours, theirs))
        memory.append(f"{label}: storage's RSS {before / MIB:.1f} MiB before its transfers, peak {peak / MIB:.1f} MiB during them")

    small = os.urandom(4096)
    request = urllib.request.Request(f"{args.storage}/storage/v1/object/bench/small.bin", data=small, method="POST",
                                     headers={**auth, "Content-Type": "application/octet-stream"})
    urllib.request.urlopen(request, timeout=30).read()
    with open(os.path.join(args.nginx_root, "small.bin"), "wb") as out:
        out.write(small)
    ours = statistics.median(wrk(f"{args.storage}/storage/v1/object/bench/small.bin", auth, args.seconds, args.connections)
                             for _ in range(args.rounds))
    theirs = statistics.median(wrk(f"{args.nginx}/small.bin", {}, args.seconds, args.connections) for _ in range(args.rounds))
    rows.append((f"4 KiB GETs/s ({args.connections} connections, wrk -t2)", ours, theirs))

    print(f"\nstorage beside nginx, same disk, median of {args.rounds} rounds ({os.cpu_count()} cores; load {open('/proc/loadavg').read().split()[:3]})")
    print(f"{'measure':<52} {'storage':>10} {'nginx':>10} {'ratio':>7}")
    for name, ours, theirs in rows:
        print(f"{name:<52} {ours:>10.1f} {theirs:>10.1f} {ours / theirs:>7.2f}")
    for line in memory:
        print(line)


if __name__ == "__main__":
    main()
