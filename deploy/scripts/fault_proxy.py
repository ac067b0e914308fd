#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 proxy for the fault campaign (stdlib only, asyncio).

One FaultProxy listens on a port and forwards to one upstream (host, port). It understands just
enough HTTP/1.1 to find where each request and each response ends (Content-Length, chunked, or
until close), so kept-alive connections work through it: every client connection gets one
upstream connection of its own, opened on its first forwarded request and kept while both sides
keep theirs. When the upstream cannot be reached, or closes before a whole response, the client
connection is reset, as a transparent TCP hop would (the caller cannot tell "never sent" then,
which only makes it more careful).

A fault is set with `set_fault(kind, probability, seconds, budget)` (thread-safe) and applies
to each request that arrives while it is set, with that probability, until it has hit `budget`
requests (None: no limit) or is cleared:

  reset_before    the client connection is reset before the request is forwarded;
  reset_after     the request is forwarded and its whole response read, then the client
                  connection is reset instead of relaying it: the side effect happened, the
                  caller sees a dropped connection;
  delay_request   the request is held `seconds` before being forwarded; if the caller gives up
                  meanwhile (closes the connection), it is dropped, as a proxy that honours
                  client aborts would;
  delay_response  the request is forwarded at once and the response held `seconds`;
  http503         a synthetic "503 Service Unavailable" without forwarding (connection kept);
  http500         a synthetic "500 Internal Server Error" without forwarding (connection kept).

`clear_fault()` stops injecting. `hits` counts the requests each kind was applied to. The proxies
run on an event loop of their own in a background thread (`ProxyGroup`), so a test tool in
plain threads (chaos.py) drives them directly.

Standalone, for a manual look: `fault_proxy.py LISTEN_PORT UPSTREAM_PORT [KIND PROBABILITY
SECONDS]` proxies 127.0.0.1:LISTEN_PORT to 127.0.0.1:UPSTREAM_PORT with that fault set.
"""
from __future__ import annotations

import asyncio
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter

KINDS = ["reset_before", "reset_after", "delay_request", "delay_response", "http503", "http500"]
MAX_HEAD = 64 * 1024


class Closed(Exception):
    """The peer closed (or broke) its connection before a whole message arrived."""


async def read_head(reader: asyncio.StreamReader) -> bytes | None:
    """The start line and headers through the blank line, or None on a clean EOF before any byte."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            return None
        raise Closed() from error
    except (asyncio.LimitOverrunError, ConnectionError) as error:
        raise Closed() from error


def headers_of(head: bytes) -> tuple[list[bytes], dict[bytes, bytes]]:
    lines = head[:-4].split(b"\r\n")
    fields: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    return lines[0].split(b" ", 2), fields


async def read_body(reader: asyncio.StreamReader, fields: dict[bytes, bytes], until_eof: bool) -> bytes:
    """The body as received (chunked framing kept), per RFC 9112 §6.3 for the cases the platform uses."""
    try:
        if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
            parts = []
            while True:
                line = await reader.readuntil(b"\r\n")
                parts.append(line)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:  # trailers, then the blank line
                        trailer = await reader.readuntil(b"\r\n")
                        parts.append(trailer)
                        if trailer == b"\r\n":
                            return b"".join(parts)
                parts.append(await reader.readexactly(size + 2))
        if b"content-length" in fields:
            return await reader.readexactly(int(fields[b"content-length"]))
        if until_eof:
            return await reader.read()
        return b""
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError) as error:
        raise Closed() from error


def reset(writer: asyncio.StreamWriter) -> None:
    """Closes with a TCP RST (SO_LINGER 0) rather than a FIN."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


def close(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        writer.transport.abort() if writer.transport.is_closing() else writer.close()


def synthetic(status: int, reason: str) -> bytes:
    body = b'{"error":{"code":"proxy_fault","message":"injected by fault_proxy"}}'
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class FaultProxy:
    def __init__(self, name: str, listen_port: int, upstream_port: int, seed: int = 0,
                 host: str = "127.0.0.1", log=None):
        self.name, self.listen_port, self.upstream_port, self.host = name, listen_port, upstream_port, host
        self.log = log  # a text file: one line per request (time, proxy, request line, what happened)
        self.fault: list | None = None  # [kind, probability, seconds, budget left or None]
        self.lock = threading.Lock()  # set and cleared from other threads, consumed on the loop
        self.random = random.Random(seed)  # which requests a fault hits: the loop thread only
        self.hits: Counter[str] = Counter()
        self.forwarded = 0
        self.server: asyncio.base_events.Server | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the kernel's pick when started with 0)."""
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    def set_fault(self, kind: str, probability: float, seconds: float = 0.0, budget: int | None = None) -> None:
        assert kind in KINDS, kind
        with self.lock:
            self.fault = [kind, probability, seconds, budget]

    def clear_fault(self) -> None:
        with self.lock:
            self.fault = None

    @property
    def spent(self) -> bool:
        """Whether the fault set last has hit as many requests as it was allowed (or was cleared)."""
        with self.lock:
            return self.fault is None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.handle, self.host, self.listen_port, limit=MAX_HEAD)

    def pick(self) -> tuple[str, float] | None:
        with self.lock:
            fault = self.fault
            if fault is None or self.random.random() >= fault[1]:
                return None
            self.hits[fault[0]] += 1
            if fault[3] is not None:
                fault[3] -= 1
                if fault[3] <= 0:
                    self.fault = None
            return fault[0], fault[2]

    async def next_request(self, client_reader: asyncio.StreamReader,
                           upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None
                           ) -> tuple[bytes | None, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
        """The next request's head (None when the client closed, or when the kept-alive upstream
        connection closed meanwhile: then the client's is closed too, as a transparent hop passes
        the FIN on), and the upstream connection still usable, if any."""
        if upstream is None:
            return await read_head(client_reader), None
        request = asyncio.ensure_future(read_head(client_reader))
        upstream_closed = asyncio.ensure_future(upstream[0].read(1))  # nothing is due from it now
        await asyncio.wait([request, upstream_closed], return_when=asyncio.FIRST_COMPLETED)
        if not upstream_closed.done():
            upstream_closed.cancel()
            try:
                await upstream_closed
            except asyncio.CancelledError:
                pass
            return await request, upstream
        upstream_closed.exception()  # retrieved, so a reset is not reported as unhandled
        close(upstream[1])
        if request.done():  # both at once: forward on a fresh upstream connection
            return request.result(), None
        request.cancel()
        try:
            await request
        except asyncio.CancelledError:
            pass
        return None, None

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                head, upstream = await self.next_request(client_reader, upstream)
                if head is None:
                    return
                (method, target, *_), fields = headers_of(head)
                request = head + await read_body(client_reader, fields, until_eof=False)
                fault = self.pick()
                kind, seconds = fault if fault else (None, 0.0)
                if self.log is not None:
                    self.log.write(f"{time.time():.3f} {self.name} {method.decode(errors='replace')} "
                                   f"{target.decode(errors='replace')} {kind or 'forward'}\n")
                    self.log.flush()
                if kind == "reset_before":
                    reset(client_writer)
                    return
                if kind in ("http503", "http500"):
                    client_writer.write(synthetic(503, "Service Unavailable") if kind == "http503"
                                        else synthetic(500, "Internal Server Error"))
                    await client_writer.drain()
                    continue
                if kind == "delay_request":
                    # The caller sends nothing more before its answer (libcurl does not
                    # pipeline): any read completing means it closed, and the request is dropped.
                    waiting = asyncio.ensure_future(client_reader.read(1))
                    done, _ = await asyncio.wait([waiting], timeout=seconds)
                    if done:
                        return
                    waiting.cancel()
                if upstream is None:
                    try:
                        upstream = await asyncio.open_connection(self.host, self.upstream_port, limit=MAX_HEAD)
                    except OSError:
                        reset(client_writer)
                        return
                upstream_reader, upstream_writer = upstream
                try:
                    upstream_writer.write(request)
                    await upstream_writer.drain()
                    self.forwarded += 1
                    response_head = await read_head(upstream_reader)
                    if response_head is None:
                        raise Closed()
                    (_, status, *_), response_fields = headers_of(response_head)
                    code = int(status)
                    bodiless = method == b"HEAD" or code in (204, 304) or 100 <= code < 200
                    response = response_head + (b"" if bodiless else await read_body(
                        upstream_reader, response_fields, until_eof=True))
                except (Closed, ConnectionError, ValueError):
                    reset(client_writer)
                    return
                if kind == "reset_after":
                    reset(client_writer)
                    return
                if kind == "delay_response":
                    await asyncio.sleep(seconds)
                client_writer.write(response)
                await client_writer.drain()
                closing = (response_fields.get(b"connection", b"").lower() == b"close"
                           or fields.get(b"connection", b"").lower() == b"close"
                           or (not bodiless and b"content-length" not in response_fields
                               and b"chunked" not in response_fields.get(b"transfer-encoding", b"").lower()))
                if closing:
                    return
        except (Closed, ConnectionError, OSError):
            return
        finally:
            if upstream is not None:
                close(upstream[1])
            if not client_writer.transport.is_closing():
                client_writer.close()


class ProxyGroup:
    """Proxies on one event loop in a daemon thread."""

    def __init__(self, proxies: list[FaultProxy]):
        self.proxies = proxies
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fault-proxies", daemon=True)

    def start(self) -> None:
        self.thread.start()
        for proxy in self.proxies:
            asyncio.run_coroutine_threadsafe(proxy.start(), self.loop).result(10)

    def stop(self) -> None:
        async def close_all() -> None:
            for proxy in self.proxies:
                if proxy.server is not None:
                    proxy.server.close()
        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def main() -> int:
    if len(sys.argv) not in (3, 6):
        print(__doc__, file=sys.stderr)
        return 2
    proxy = FaultProxy("manual", int(sys.argv[1]), int(sys.argv[2]))
    if len(sys.argv) == 6:
        proxy.set_fault(sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))

    async def serve() -> None:
        await proxy.start()
        assert proxy.server is not None
        async with proxy.server:
            await proxy.server.serve_forever()
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
