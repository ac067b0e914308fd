"""The measuring half of bench-realtime.sh (which builds and starts the services): broadcast
fan-out on realtime's websocket at N sockets (1,000 and 5,000 by default), all joined to one
public channel of a project made the real way.

For each run (a size N and a rate R): several receiver processes (multiprocessing, each an
asyncio loop with the `websockets` package, each holding about N/k sockets) connect and join at
once; connects/s is the sockets joined over the time from the first connect to the last join
reply. Then this process broadcasts M messages at the fixed rate R over HTTP
(`POST /realtime/v1/api/broadcast`, one message per request, from a few persistent
connections), each payload carrying its send time (microseconds since the epoch,
`time.time_ns() // 1000`: realtime parses payload numbers as IEEE doubles, exact below 2^53,
which nanoseconds since 1970 are not). Every receiving socket takes receive time − send time as
its latency; per message, the fastest and the slowest socket's latency are kept too. Messages
delivered per second: the deliveries over the time from the first send to the last receive.
Sockets held: joined and still open after the fan-out. Realtime's RSS (VmRSS) is read before
connecting, with every socket joined, and after the fan-out; per socket: (joined − before) over
the sockets joined. By default each size runs at two rates, 10,000 and 25,000 deliveries/s ÷ N.

The receivers' share of the latency is reported: their CPU over the fan-out (per process; near
1.0 it was saturated), their CPU per frame, and so the CPU one message costs a process (its
sockets' copies are handled one after another, so its last socket sees a message at least that
long after its first). Prints a table; writes the figures as JSON; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import resource
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from array import array
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from bench_common import Sampler, call, project, rss

MIB = 1 << 20
HEARTBEAT_SECONDS = 25


# --- The project --------------------------------------------------------------------------------


# --- The server process -------------------------------------------------------------------------


def cpu_seconds(pid: int, reaped: bool = False) -> float:
    """utime + stime of a process, in seconds; with `reaped`, also cutime + cstime (the
    children it has waited for since it started)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int) -> float:
    """CPU seconds of a process, its living descendants and the children it has reaped
    (PostgreSQL's postmaster, its backends, and the backends that have exited: services' pools
    retire a connection after DB_CONNECTION_MAX_USES leases, 1,000 by default, so a busy pool's
    backends come and go, and a gone one's CPU is only in the postmaster's cutime/cstime)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    family, total = {root}, 0.0
    for pid in sorted(parents):
        if parents[pid] in family:
            family.add(pid)
    for pid in family:
        try:
            total += cpu_seconds(pid, reaped=pid == root)
        except OSError:
            pass
    return total


def box_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def metrics(base: str) -> dict[str, float]:
    """realtime's /metrics, the realtime_* samples."""
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as answer:
            text = answer.read().decode()
    except Exception as error:  # noqa: BLE001 - a figure missing is reported, not fatal
        return {"error": str(error)}
    found = {}
    for line in text.splitlines():
        if line.startswith("realtime_"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


# --- A receiver process -------------------------------------------------------------------------

class Socket:
    __slots__ = ("ws", "index", "joined", "received", "last_seq", "out_of_order", "close")

    def __init__(self, ws, index: int):
        self.ws, self.index, self.joined, self.received, self.last_seq, self.out_of_order, self.close = ws, index, False, 0, 0, 0, None


class Receiver:
    """One process's share of the sockets; driven by the parent through a pipe. What a socket
    sends to join, what it does with a frame and how many frames it should get are the methods
    `join_payload`, `take` and `expected` (broadcasts here; bench_realtime_changes.py's
    receiver overrides them for database changes)."""

    def __init__(self, pipe, url: str, topic: str, count: int, concurrency: int):
        self.pipe, self.url, self.topic, self.count, self.concurrency = pipe, url, topic, count, concurrency
        self.sockets: list[Socket] = []
        self.failures: Counter = Counter()
        self.tasks: set[asyncio.Task] = set()  # the readers and the heartbeat, held (asyncio keeps weak references)
        self.latencies = array("q")
        # Per message (its "n"): the fastest and the slowest socket's latency in this process.
        self.spread: dict[int, list[int]] = {}
        self.counting = False
        self.first_receive = self.last_receive = 0
        self.unparsed = 0
        self.extra: Counter = Counter()  # a subclass's own counts, reported with the drain

    async def command(self):
        return await asyncio.to_thread(self.pipe.recv)

    def join_payload(self, socket: Socket) -> dict:
        return {"config": {}}

    def expected(self, socket: Socket, count: int) -> int:
        """The frames a socket should receive of the `count` messages sent."""
        return count

    def take(self, socket: Socket, frame: dict, now: int) -> None:
        """A frame a socket received at `now` (ns); a broadcast is counted while counting."""
        if frame["event"] != "broadcast":
            return
        inner = frame["payload"]
        sent, n = inner["payload"]["t"], inner["payload"]["n"]
        seq = inner["meta"]["seq"]
        if self.counting:
            self.count_delivery(socket, n, seq, now // 1000 - sent, now)

    def count_delivery(self, socket: Socket, n: int, seq: int, latency: int, now: int) -> None:
        """One delivery of message `n` (latency in µs); `seq` must grow on each socket."""
        self.latencies.append(latency)
        bounds = self.spread.get(n)
        if bounds is None:
            self.spread[n] = [latency, latency]
        elif latency < bounds[0]:
            bounds[0] = latency
        elif latency > bounds[1]:
            bounds[1] = latency
        socket.received += 1
        if seq <= socket.last_seq:
            socket.out_of_order += 1
        socket.last_seq = seq
        if not self.first_receive:
            self.first_receive = now
        self.last_receive = now

    async def open_one(self, index: int, gate: asyncio.Semaphore, finished: list) -> None:
        from websockets.asyncio.client import connect

        async with gate:
            try:
                ws = await connect(self.url, compression=None, ping_interval=None, proxy=None, open_timeout=60,
                                   close_timeout=2, max_queue=None)
            except Exception as error:  # noqa: BLE001 - every kind of refusal is counted and reported
                self.failures[f"connect: {type(error).__name__}: {str(error)[:120]}"] += 1
                return
            socket = Socket(ws, index)
            self.sockets.append(socket)
            try:
                await ws.send(json.dumps({"topic": f"realtime:{self.topic}", "event": "phx_join",
                                          "payload": self.join_payload(socket), "ref": "1", "join_ref": "1"}))
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
                    if frame.get("event") == "phx_reply" and frame.get("ref") == "1":
                        break
                status = frame["payload"].get("status")
                if status != "ok":
                    self.failures[f"join: {json.dumps(frame['payload'])[:160]}"] += 1
                    return
            except Exception as error:  # noqa: BLE001
                self.failures[f"join: {type(error).__name__}: {str(error)[:120]}"] += 1
                return
            socket.joined = True
            finished.append(time.time_ns())
        self.tasks.add(asyncio.get_running_loop().create_task(self.read(socket)))

    async def read(self, socket: Socket) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for text in socket.ws:
                now = time.time_ns()
                try:
                    self.take(socket, json.loads(text), now)
                except (ValueError, KeyError, TypeError):
                    self.unparsed += 1
        except ConnectionClosed:
            pass
        except Exception as error:  # noqa: BLE001
            self.failures[f"read: {type(error).__name__}: {str(error)[:120]}"] += 1
        close = socket.ws.protocol.close_rcvd
        socket.close = f"{close.code} {close.reason}".strip() if close else "no close frame (connection cut)"

    async def heartbeats(self) -> None:
        """Phoenix heartbeats on every open socket (realtime closes a silent socket)."""
        frame = json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": None})
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            for socket in list(self.sockets):
                if socket.close is None:
                    try:
                        await socket.ws.send(frame)
                    except Exception:  # noqa: BLE001 - the reader records the close
                        pass

    def held(self) -> int:
        from websockets.protocol import State

        return sum(1 for s in self.sockets if s.joined and s.close is None and s.ws.state is State.OPEN)

    async def run(self) -> None:
        self.pipe.send(("up",))
        await self.command()  # connect
        self.tasks.add(asyncio.get_running_loop().create_task(self.heartbeats()))
        gate, finished = asyncio.Semaphore(self.concurrency), []
        started = time.time_ns()
        await asyncio.gather(*(self.open_one(i, gate, finished) for i in range(self.count)))
        self.pipe.send(("joined", {"started_ns": started, "last_join_ns": max(finished, default=started),
                                   "joined": len(finished), "failures": dict(self.failures)}))
        expected = 0
        while True:
            command = await self.command()
            if command[0] == "fanout":
                expected = command[1]
                self.latencies, self.spread, self.first_receive, self.last_receive = array("q"), {}, 0, 0
                self.extra = Counter()
                for socket in self.sockets:
                    socket.received = socket.out_of_order = socket.last_seq = 0
                self.counting = True
                usage, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
                self.pipe.send(("ready",))
            elif command[0] == "drain":
                # Until every socket has its frames, or the deadline; with a `quiet` (seconds),
                # also once no frame has come for that long.
                deadline, quiet = command[1], command[2] if len(command) > 2 else None
                live = [s for s in self.sockets if s.joined]
                began = time.time_ns()
                while time.time() < deadline and any(s.received < self.expected(s, expected) and s.close is None for s in live):
                    if quiet is not None and time.time_ns() - max(began, self.last_receive) > quiet * 1e9:
                        break
                    await asyncio.sleep(0.05)
                end, wall_end = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
                self.counting = False
                cpu = end.ru_utime + end.ru_stime - usage.ru_utime - usage.ru_stime
                self.pipe.send(("drained", {
                    "deliveries": len(self.latencies), "latencies": self.latencies.tobytes(), "spread": self.spread,
                    "sockets": len(live),
                    "first_receive_ns": self.first_receive, "last_receive_ns": self.last_receive,
                    "cpu_seconds": cpu, "wall_seconds": wall_end - wall,
                    "expected": sum(self.expected(s, expected) for s in live),
                    "complete_sockets": sum(1 for s in live if s.received >= self.expected(s, expected)),
                    "short_sockets": sum(1 for s in live if s.received < self.expected(s, expected)),
                    "out_of_order": sum(s.out_of_order for s in live), "unparsed": self.unparsed,
                    "extra": dict(self.extra)}))
            elif command[0] == "close":
                held = self.held()
                closed_by_server = Counter(s.close for s in self.sockets if s.joined and s.close is not None)
                await asyncio.gather(*(s.ws.close() for s in self.sockets if s.close is None), return_exceptions=True)
                self.pipe.send(("closed", {"held": held, "closed_by_server": dict(closed_by_server),
                                           "failures": dict(self.failures)}))
                return


def receiver_main(pipe, kind: type, *arguments) -> None:
    """A receiver process: `kind` (Receiver or a subclass) made with the pipe and `arguments`."""
    try:
        asyncio.run(kind(pipe, *arguments).run())
    except Exception as error:  # noqa: BLE001 - the parent reports it
        pipe.send(("crashed", f"{type(error).__name__}: {error}"))


# --- The sender ---------------------------------------------------------------------------------

class Sender:
    """POST /realtime/v1/api/broadcast, one message per request, at a fixed rate."""

    def __init__(self, base: str, key: str, topic: str, threads: int = 8):
        parsed = urllib.parse.urlsplit(base)
        self.host, self.port, self.key, self.topic = parsed.hostname, parsed.port, key, topic
        self.local = threading.local()
        self.threads = threads
        self.statuses: Counter = Counter()
        self.post_ms: list[float] = []
        self.sent_ns: list[int] = []
        self.lock = threading.Lock()

    def post(self, n: int) -> None:
        for attempt in (1, 2):
            connection = getattr(self.local, "connection", None)
            if connection is None:
                connection = self.local.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
            started = time.monotonic()
            sent = time.time_ns()
            body = json.dumps({"messages": [{"topic": self.topic, "event": "e", "payload": {"t": sent // 1000, "n": n}}]})
            try:
                connection.request("POST", "/realtime/v1/api/broadcast", body,
                                   {"apikey": self.key, "Content-Type": "application/json"})
                answer = connection.getresponse()
                answer.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                self.local.connection = None
                if attempt == 2:
                    with self.lock:
                        self.statuses[f"{type(error).__name__}"] += 1
                continue
            with self.lock:
                self.statuses[str(answer.status)] += 1
                self.post_ms.append((time.monotonic() - started) * 1000)
                self.sent_ns.append(sent)
            return

    def run(self, count: int, rate: float) -> tuple[int, int]:
        """Sends `count` messages `1/rate` apart (a request starts when a thread is free, so a
        slow answer delays the next ones); (first, last) request's send time in ns."""
        with ThreadPoolExecutor(self.threads) as pool:
            start = time.monotonic() + 0.05
            for n in range(count):
                pause = start + n / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                pool.submit(self.post, n)
        return min(self.sent_ns, default=0), max(self.sent_ns, default=0)


# --- One size -----------------------------------------------------------------------------------

def percentile(ordered, fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def expect(pipe, kind: str, timeout: float):
    if not pipe.poll(timeout):
        raise SystemExit(f"a receiver did not answer '{kind}' within {timeout:.0f}s")
    message = pipe.recv()
    if message[0] != kind:
        raise SystemExit(f"a receiver answered {message!r} instead of '{kind}'")
    return message[1] if len(message) > 1 else None


def warm_up(args, key: str) -> None:
    """One socket joins, one broadcast reaches it, it leaves: what realtime allocates on first use
    (its pools, the key's check, the tenant's limits) is in the 'idle' RSS, not in the sockets'."""
    async def once() -> None:
        from websockets.asyncio.client import connect

        url = args.realtime.replace("http://", "ws://") + f"/realtime/v1/websocket?apikey={key}&vsn=1.0.0"
        async with connect(url, compression=None, ping_interval=None, proxy=None) as ws:
            await ws.send(json.dumps({"topic": "realtime:warm-up", "event": "phx_join", "payload": {"config": {}},
                                      "ref": "1", "join_ref": "1"}))
            await asyncio.wait_for(ws.recv(), 30)
            Sender(args.realtime, key, "warm-up", threads=1).post(0)
            while json.loads(await asyncio.wait_for(ws.recv(), 30))["event"] != "broadcast":
                pass

    asyncio.run(once())
    time.sleep(1)


def run_size(args, key: str, n: int, rate: float) -> dict:
    topic = f"bench-{n}-{secrets.token_hex(3)}"
    ws_url = args.realtime.replace("http://", "ws://") + f"/realtime/v1/websocket?apikey={key}&vsn=1.0.0"
    count = max(1, round(rate * args.seconds))
    sender = Sender(args.realtime, key, topic)

    def send(count: int) -> tuple[int, int]:
        print(f"[{n} sockets] broadcasting {count} messages at {rate:g}/s over HTTP", file=sys.stderr)
        return sender.run(count, rate)

    figures = fan_out(args, n, count, lambda share, offset, concurrency: (Receiver, ws_url, topic, share, concurrency),
                      send, f"on topic {topic}")
    send_span = (figures.pop("last_send_ns") - figures["first_send_ns"]) / 1e9
    post_ms = sorted(sender.post_ms)
    return {
        "sockets": n,
        "topic": topic,
        "messages": count,
        "rate_per_second": rate,
        "send_seconds": send_span,
        "rate_achieved_per_second": (count - 1) / send_span if send_span > 0 else None,
        "http_statuses": dict(sender.statuses),
        "http_post_p50_ms": percentile(post_ms, 0.5),
        "http_post_p99_ms": percentile(post_ms, 0.99),
        **figures,
    }


def fan_out(args, n: int, count: int, receiver, send, label: str, quiet: float | None = None) -> dict:
    """What a run measures beside its sender: n sockets over several receiver processes, each
    process made by `receiver(share, offset, concurrency)` → (Receiver or a subclass, its
    arguments after the pipe; offset: the index of the process's first socket among all);
    `send(count)` sends the `count` messages and answers (first, last) send time in ns; then the
    drain (until every socket has its frames, the --drain deadline, or `quiet` seconds without
    a frame). The figures common to both benchmarks."""
    os.makedirs(args.out, exist_ok=True)
    k = min(args.receivers, n)
    shares = [n // k + (1 if i < n % k else 0) for i in range(k)]
    concurrency = max(1, args.connect_concurrency // k)
    context = multiprocessing.get_context("fork")
    pipes, processes = [], []
    for i, share in enumerate(shares):
        ours, theirs = context.Pipe()
        process = context.Process(target=receiver_main, args=(theirs, *receiver(share, sum(shares[:i]), concurrency)), daemon=True)
        process.start()
        pipes.append(ours)
        processes.append(process)
    for pipe in pipes:
        expect(pipe, "up", 60)
    print(f"[{n} sockets] {k} receiver processes, {shares} sockets each; connecting {label}", file=sys.stderr)

    before = metrics(args.realtime)
    rss_idle = rss(args.realtime_pid)
    cpu_connect = cpu_seconds(args.realtime_pid)
    for pipe in pipes:
        pipe.send(("connect",))
    joined = [expect(pipe, "joined", 600) for pipe in pipes]
    connect_cpu = cpu_seconds(args.realtime_pid) - cpu_connect
    total_joined = sum(j["joined"] for j in joined)
    span = (max(j["last_join_ns"] for j in joined) - min(j["started_ns"] for j in joined)) / 1e9
    connect_failures = Counter()
    for j in joined:
        connect_failures.update(j["failures"])
    print(f"[{n} sockets] {total_joined} joined in {span:.2f}s" + (f"; failures: {dict(connect_failures)}" if connect_failures else ""),
          file=sys.stderr)
    # The settle: every socket joined, nothing sent; what realtime and PostgreSQL burn then.
    idle_cpu, idle_postgres, idle_wall = cpu_seconds(args.realtime_pid), tree_cpu(args.postgres_pid) if args.postgres_pid else None, time.monotonic()
    time.sleep(args.settle)
    idle_wall = time.monotonic() - idle_wall
    idle_cpu = cpu_seconds(args.realtime_pid) - idle_cpu
    idle_postgres = tree_cpu(args.postgres_pid) - idle_postgres if args.postgres_pid else None
    rss_connected = rss(args.realtime_pid)
    connected_metrics = metrics(args.realtime)

    for pipe in pipes:
        pipe.send(("fanout", count))
    for pipe in pipes:
        expect(pipe, "ready", 60)
    server_cpu, box, wall = cpu_seconds(args.realtime_pid), box_cpu(), time.monotonic()
    postgres_cpu = tree_cpu(args.postgres_pid) if args.postgres_pid else None
    own = resource.getrusage(resource.RUSAGE_SELF)
    with Sampler(args.realtime_pid, interval=0.05) as sampler:
        first_send, last_send = send(count)
        for pipe in pipes:
            pipe.send(("drain", time.time() + args.drain, quiet))
        drained = [expect(pipe, "drained", args.drain + 120) for pipe in pipes]
    box_end, wall = box_cpu(), time.monotonic() - wall
    server_cpu = cpu_seconds(args.realtime_pid) - server_cpu
    postgres_cpu = tree_cpu(args.postgres_pid) - postgres_cpu if args.postgres_pid else None
    own_end = resource.getrusage(resource.RUSAGE_SELF)
    sender_cpu = own_end.ru_utime + own_end.ru_stime - own.ru_utime - own.ru_stime
    rss_after = rss(args.realtime_pid)
    after_metrics = metrics(args.realtime)

    for pipe in pipes:
        pipe.send(("close",))
    closed = [expect(pipe, "closed", 120) for pipe in pipes]
    for process in processes:
        process.join(30)
        if process.is_alive():
            process.terminate()

    latencies = array("q")
    for d in drained:
        latencies.frombytes(d["latencies"])
    ordered = sorted(latencies)
    deliveries = len(ordered)
    last_receive = max(d["last_receive_ns"] for d in drained)
    delivery_span = (last_receive - first_send) / 1e9 if last_receive else float("nan")
    fastest: dict[int, int] = {}
    slowest: dict[int, int] = {}
    for d in drained:
        for n_, (low, high) in d["spread"].items():
            fastest[n_] = min(low, fastest.get(n_, low))
            slowest[n_] = max(high, slowest.get(n_, high))
    fastest_sorted, slowest_sorted = sorted(fastest.values()), sorted(slowest.values())
    # What one message costs the receivers: each process handles its sockets' copies one after
    # another, so the last of its sockets sees a message at least this long after the first.
    frame_us = [d["cpu_seconds"] / d["deliveries"] * 1e6 if d["deliveries"] else None for d in drained]
    burst_ms = [d["sockets"] * f / 1000 if f else None for d, f in zip(drained, frame_us)]
    closed_by_server = Counter()
    late_failures = Counter()
    for c in closed:
        closed_by_server.update(c["closed_by_server"])
        late_failures.update({k: v for k, v in c["failures"].items() if not k.startswith(("connect:", "join:"))})
    receiver_cpu = [d["cpu_seconds"] / d["wall_seconds"] if d["wall_seconds"] else 0 for d in drained]
    busy, total = box_end[0] - box[0], box_end[1] - box[1]
    extra = Counter()
    for d in drained:
        extra.update(d["extra"])
    return {
        "receiver_processes": k,
        "joined": total_joined,
        "connect_failures": dict(connect_failures),
        "connect_seconds": span,
        "connects_per_second": total_joined / span if span > 0 else None,
        "server_cpu_seconds_connecting": connect_cpu,
        "held": sum(c["held"] for c in closed),
        "closed_by_server": dict(closed_by_server),
        "receiver_errors": dict(late_failures),
        "first_send_ns": first_send,
        "last_send_ns": last_send,
        "last_receive_ns": last_receive,
        "deliveries_expected": sum(d["expected"] for d in drained),
        "deliveries": deliveries,
        "messages_received": len(fastest),
        "receiver_counts": dict(extra),
        "unparsed_frames": sum(d["unparsed"] for d in drained),
        "sockets_complete": sum(d["complete_sockets"] for d in drained),
        "sockets_short": sum(d["short_sockets"] for d in drained),
        "out_of_order": sum(d["out_of_order"] for d in drained),
        "delivery_seconds": delivery_span,
        "deliveries_per_second": deliveries / delivery_span if deliveries and delivery_span > 0 else 0,
        "latency_p50_ms": percentile(ordered, 0.5) / 1000,
        "latency_p99_ms": percentile(ordered, 0.99) / 1000,
        "latency_max_ms": (ordered[-1] / 1000) if ordered else float("nan"),
        "first_socket_latency_p50_ms": percentile(fastest_sorted, 0.5) / 1000,
        "first_socket_latency_p99_ms": percentile(fastest_sorted, 0.99) / 1000,
        "last_socket_latency_p50_ms": percentile(slowest_sorted, 0.5) / 1000,
        "last_socket_latency_p99_ms": percentile(slowest_sorted, 0.99) / 1000,
        "receiver_cpu_utilisation": receiver_cpu,
        "receiver_cpu_us_per_frame": frame_us,
        "receiver_cpu_ms_per_message": burst_ms,
        "receivers_saturated": any(u >= args.saturated for u in receiver_cpu),
        "server_cpu_cores_during_fanout": server_cpu / delivery_span if delivery_span > 0 else None,
        "server_cpu_us_per_delivery": server_cpu / deliveries * 1e6 if deliveries else None,
        "server_cpu_seconds": server_cpu,
        "postgres_cpu_seconds": postgres_cpu,
        "window_seconds": wall,
        "cores_realtime_idle": idle_cpu / idle_wall,
        "cores_postgres_idle": idle_postgres / idle_wall if idle_postgres is not None else None,
        "box_cpu_busy_during_fanout": busy / total if total else None,
        # Cores, over the fan-out (from the first send to the drain): the whole box, then
        # realtime, PostgreSQL (postmaster and backends), the receivers, this process (the
        # sender), and what is left: the other services and anything else on the box.
        "cores_box": busy / total * (os.cpu_count() or 1) if total else None,
        "cores_realtime": server_cpu / wall,
        "cores_postgres": postgres_cpu / wall if postgres_cpu is not None else None,
        "cores_receivers": sum(d["cpu_seconds"] for d in drained) / wall,
        "cores_sender": sender_cpu / wall,
        "rss_idle_bytes": rss_idle,
        "rss_connected_bytes": rss_connected,
        "rss_peak_fanout_bytes": sampler.peak,
        "rss_after_bytes": rss_after,
        "rss_per_socket_bytes": (rss_connected - rss_idle) / total_joined if total_joined else None,
        "metrics_before": before,
        "metrics_connected": connected_metrics,
        "metrics_after": after_metrics,
    }


# --- The table ----------------------------------------------------------------------------------

def cores(r: dict) -> str:
    parts = [r["cores_realtime"], r["cores_postgres"], r["cores_receivers"], r["cores_sender"]]
    if r["cores_box"] is None or None in parts:
        return "-"
    return "/".join(f"{p:.2f}" for p in parts + [max(0.0, r["cores_box"] - sum(parts))])


def table(runs: list[dict]) -> str:
    def mib(v): return f"{v / MIB:.1f}"
    rows = [
        ("sockets asked", lambda r: f"{r['sockets']}"),
        ("receiver processes", lambda r: f"{r['receiver_processes']}"),
        ("sockets joined", lambda r: f"{r['joined']}"),
        ("connects/s (open + join)", lambda r: f"{r['connects_per_second']:.0f}" if r["connects_per_second"] else "-"),
        ("sockets held after the fan-out", lambda r: f"{r['held']}"),
        ("messages sent (HTTP) @ rate/s", lambda r: f"{r['messages']} @ {r['rate_achieved_per_second'] or 0:.1f}"),
        ("HTTP POST p50 / p99 ms", lambda r: f"{r['http_post_p50_ms']:.1f} / {r['http_post_p99_ms']:.1f}"),
        ("deliveries / expected", lambda r: f"{r['deliveries']} / {r['deliveries_expected']}"),
        ("messages delivered/s", lambda r: f"{r['deliveries_per_second']:.0f}"),
        ("latency p50 ms (send→receive)", lambda r: f"{r['latency_p50_ms']:.1f}"),
        ("latency p99 ms", lambda r: f"{r['latency_p99_ms']:.1f}"),
        ("latency max ms", lambda r: f"{r['latency_max_ms']:.1f}"),
        ("per message: first socket p50/p99 ms", lambda r: f"{r['first_socket_latency_p50_ms']:.1f} / {r['first_socket_latency_p99_ms']:.1f}"),
        ("per message: last socket p50/p99 ms", lambda r: f"{r['last_socket_latency_p50_ms']:.1f} / {r['last_socket_latency_p99_ms']:.1f}"),
        ("realtime RSS idle MiB", lambda r: mib(r["rss_idle_bytes"])),
        ("realtime RSS connected MiB", lambda r: mib(r["rss_connected_bytes"])),
        ("realtime RSS peak fan-out MiB", lambda r: mib(r["rss_peak_fanout_bytes"])),
        ("realtime RSS after MiB", lambda r: mib(r["rss_after_bytes"])),
        ("RSS per socket KiB", lambda r: f"{r['rss_per_socket_bytes'] / 1024:.1f}" if r["rss_per_socket_bytes"] is not None else "-"),
        ("realtime CPU µs per delivery", lambda r: f"{r['server_cpu_us_per_delivery']:.1f}" if r["server_cpu_us_per_delivery"] else "-"),
        ("box CPU busy (fan-out)", lambda r: f"{r['box_cpu_busy_during_fanout'] * 100:.0f}%" if r["box_cpu_busy_during_fanout"] is not None else "-"),
        ("cores: realtime/pg/receivers/sender/rest", lambda r: cores(r)),
        ("receiver CPU per process", lambda r: " ".join(f"{u:.2f}" for u in r["receiver_cpu_utilisation"])
         + (" SATURATED" if r["receivers_saturated"] else "")),
        ("receiver CPU µs per frame", lambda r: " ".join(f"{u:.0f}" if u else "-" for u in r["receiver_cpu_us_per_frame"])),
        ("receiver CPU ms per message", lambda r: " ".join(f"{u:.0f}" if u else "-" for u in r["receiver_cpu_ms_per_message"])),
        ("closed by the server", lambda r: f"{sum(r['closed_by_server'].values())}"),
    ]
    width = max(len(name) for name, _ in rows) + 2
    grid = [["N=%d R=%g/s" % (r["sockets"], r["rate_per_second"]) for r in runs]] + [[cell(r) for r in runs] for _, cell in rows]
    column = max(len(text) for line in grid for text in line) + 3
    names = ["measure"] + [name for name, _ in rows]
    return "\n".join(f"{name:<{width}}" + "".join(f"{text:>{column}}" for text in line) for name, line in zip(names, grid))


def raise_limits(database: str, slug: str, max_sockets: int) -> None:
    """The project's realtime limits raised so they do not cap the benchmark (an operator's UPDATE)."""
    limit = max_sockets * 2 + 100
    subprocess.run(["psql", database, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                    f"UPDATE realtime.tenants SET max_concurrent_users = {limit}, max_events_per_second = 100000, "
                    f"max_joins_per_second = {limit}, max_channels_per_client = 100 WHERE slug = '{slug}'"], check=True)
    print(f"project {slug}; realtime limits raised: {limit} sockets, {limit} joins/s, 100,000 events/s", file=sys.stderr)


def setup(args) -> None:
    """The project, and its realtime limits raised so they do not cap the benchmark."""
    slug, key = project(args, "publishable")
    raise_limits(args.database, slug, args.max_sockets)
    with open(args.project, "w") as out:
        json.dump({"slug": slug, "key": key}, out)


def plan(args) -> None:
    """The runs, one line of `run` arguments each (`--sockets N --rate R`): every size at every
    deliveries target, or the rates given."""
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rates = [float(r) for r in args.rates.split(",") if r]
    if rates and len(rates) != len(sizes):
        raise SystemExit("the rates need one rate per size")
    runs = list(zip(sizes, rates)) if rates else [(n, float(d) / n) for n in sizes for d in args.deliveries.split(",") if d]
    for n, rate in runs:
        print(f"--sockets {n} --rate {rate!r}")


def run(args) -> None:
    with open(args.project) as file:
        key = json.load(file)["key"]
    warm_up(args, key)
    figures = run_size(args, key, args.sockets, args.rate)
    with open(os.path.join(args.out, "runs.jsonl"), "a") as out:
        out.write(json.dumps(figures) + "\n")


def report(args) -> None:
    with open(args.project) as file:
        slug = json.load(file)["slug"]
    with open(os.path.join(args.out, "runs.jsonl")) as file:
        runs = [json.loads(line) for line in file if line.strip()]
    header = (f"realtime broadcast fan-out, one public channel, HTTP sender, {os.cpu_count()} cores, "
              f"load {' '.join(open('/proc/loadavg').read().split()[:3])}; realtime restarted before each run")
    print("\n" + header)
    print(table(runs))
    print("Latency is send (before the HTTP request) → receive (parsed in Python). 'receiver CPU ms per message' is the\n"
          "least time between a receiver process's first and last socket seeing one message; what the last socket's\n"
          "latency has beyond it is the server's, PostgreSQL's and the box's. 'rest': the other services and anything\n"
          "else running on the box.")
    for r in runs:
        notes = []
        if r["connect_failures"]:
            notes.append(f"connect/join failures {r['connect_failures']}")
        if r["closed_by_server"]:
            notes.append(f"closed by the server {r['closed_by_server']}")
        if r["receiver_errors"]:
            notes.append(f"receiver errors {r['receiver_errors']}")
        if set(r["http_statuses"]) - {"202"}:
            notes.append(f"HTTP answers {r['http_statuses']}")
        if r["out_of_order"]:
            notes.append(f"{r['out_of_order']} deliveries out of order")
        if r["sockets_short"]:
            notes.append(f"{r['sockets_short']} sockets short of the {r['messages']} messages at the drain deadline")
        if r["rate_achieved_per_second"] and r["rate_achieved_per_second"] < 0.95 * r["rate_per_second"]:
            notes.append(f"the sender reached {r['rate_achieved_per_second']:.1f} messages/s, not {r['rate_per_second']:g} "
                         f"(8 requests in flight; HTTP POST p99 {r['http_post_p99_ms']:.0f} ms)")
        if r["receivers_saturated"]:
            notes.append("a receiver process was CPU-saturated: latency and deliveries/s are partly the load tool's")
        slow = r["metrics_after"].get("realtime_slow_consumers_closed_total")
        if slow:
            notes.append(f"realtime_slow_consumers_closed_total = {slow:g}")
        if notes:
            print(f"N={r['sockets']} R={r['rate_per_second']:g}/s: " + "; ".join(notes))
    path = os.path.join(args.out, "results.json")
    with open(path, "w") as out:
        json.dump({"header": header, "project": slug, "runs": runs}, out, indent=2)
    print(f"figures: {path}")


def add_run_arguments(one, *, settle: str, drain: float, drain_help: str) -> None:
    """The arguments of a fan-out run (`fan_out`) that both benchmarks' `run` take."""
    one.add_argument("--realtime-pid", type=int, required=True)
    one.add_argument("--postgres-pid", type=int, help="the postmaster, whose CPU (with its backends') is reported")
    one.add_argument("--sockets", type=int, required=True)
    one.add_argument("--receivers", type=int, default=max(2, min(4, os.cpu_count() or 2)))
    one.add_argument("--connect-concurrency", type=int, default=200, help="handshakes in flight, over all receivers")
    one.add_argument("--settle", type=float, default=2, help=settle)
    one.add_argument("--drain", type=float, default=drain, help=drain_help)
    one.add_argument("--saturated", type=float, default=0.9, help="receiver CPU utilisation called saturated")


def add_report_command(commands, report, help: str) -> None:
    one = commands.add_parser("report", help=help)
    for name in ("project", "out"):
        one.add_argument("--" + name, required=True)
    one.set_defaults(act=report)


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("setup", help="make the project, raise its realtime limits")
    for name in ("auth", "provisioning", "token", "database", "project"):
        one.add_argument("--" + name, required=True)
    one.add_argument("--max-sockets", type=int, required=True)
    one.set_defaults(act=setup)
    one = commands.add_parser("plan", help="the runs, one line of run arguments each")
    one.add_argument("--sizes", default="1000,5000", help="socket counts, comma-separated")
    one.add_argument("--rates", default="", help="messages/s per size, comma-separated (instead of --deliveries)")
    one.add_argument("--deliveries", default="10000,25000",
                     help="target deliveries/s, comma-separated: a run at each for every size (rate = target / N)")
    one.set_defaults(act=plan)
    one = commands.add_parser("run", help="one size at one rate; its figures appended to OUT/runs.jsonl")
    for name in ("realtime", "project", "out"):
        one.add_argument("--" + name, required=True)
    add_run_arguments(one, settle="seconds between the last join and the 'connected' RSS", drain=15,
                      drain_help="seconds after the last send to wait for deliveries")
    one.add_argument("--rate", type=float, required=True, help="messages/s")
    one.add_argument("--seconds", type=float, default=20, help="the fan-out's length")
    one.set_defaults(act=run)
    add_report_command(commands, report, "the table of OUT/runs.jsonl; OUT/results.json")
    args = parser.parse_args()
    args.act(args)


if __name__ == "__main__":
    main()
