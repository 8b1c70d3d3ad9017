"""A live MPEG-TS server on 127.0.0.1 that misbehaves on cue, for the live-source tests.

It serves one clip over HTTP (``http://127.0.0.1:PORT/live.ts``) or raw TCP
(``tcp://127.0.0.1:PORT``) at real-time pace, like a camera, and follows a plan, one step per
connection: send so many seconds of the clip, then close the connection (a drop), stall (keep
the socket open and send nothing), or finish the clip. When the plan runs out it stops
listening, so further connections are refused::

    with LoopbackServer(ts_bytes, duration_s=4.0, plan=[Step(1.5, "close"), Step()]) as srv:
        run_vidstream(srv.url)      # sees 1.5 s, a drop, then the whole clip, then refusals

It stops by itself after ``lifetime_s`` even if nobody stops it. Run it by hand to try the
command line against it::

    python tests/loopback.py clip.ts --protocol http --plan 2:close,3:stall,all
"""

from __future__ import annotations

import argparse
import random
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

TS_PACKET = 188


@dataclass(frozen=True)
class Step:
    """What one connection gets: ``seconds`` of the clip (None: all of it), then ``then``.

    ``then`` is ``"close"`` (drop the connection), ``"cut"`` (drop it in the middle of a
    transport-stream packet, as a dying link does), ``"stall"`` (send nothing more, keep the
    socket open until the server stops), ``"garbage"`` (keep sending, at the same pace, bytes
    that are not video) or ``"end"`` (close after the clip, a clean end).
    """

    seconds: float | None = None
    then: str = "end"


class LoopbackServer:
    """Serves ``data`` (an MPEG-TS clip of ``duration_s``) on 127.0.0.1 following ``plan``."""

    def __init__(
        self,
        data: bytes,
        duration_s: float,
        plan: list[Step] | None = None,
        *,
        protocol: str = "http",
        speed: float = 1.0,
        lifetime_s: float = 60.0,
        sized: bool = False,
    ) -> None:
        """``sized``: HTTP answers with a Content-Length, as for a file rather than a stream."""
        if protocol not in ("http", "tcp"):
            raise ValueError(f"protocol must be http or tcp, got {protocol!r}")
        self.data = data
        self.duration_s = duration_s
        self.plan = list(plan or [Step()])
        self.protocol = protocol
        self.speed = speed
        self.lifetime_s = lifetime_s
        self.sized = sized
        self.connections = 0
        self.bytes_sent: list[int] = []
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name="loopback-accept",
                                          daemon=True)

    @property
    def url(self) -> str:
        if self.protocol == "http":
            return f"http://127.0.0.1:{self.port}/live.ts"
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> LoopbackServer:
        self._started = time.monotonic()
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._acceptor.join(5)
        for t in self._threads:
            t.join(5)
        self._close_listener()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- machinery -----------------------------------------------------------------------
    def _alive(self) -> bool:
        return not self._stop.is_set() and time.monotonic() - self._started < self.lifetime_s

    def _close_listener(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

    def _accept(self) -> None:
        while self._alive() and self.plan:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            step = self.plan.pop(0)
            self.connections += 1
            self.bytes_sent.append(0)
            t = threading.Thread(target=self._serve, args=(conn, step, len(self.bytes_sent) - 1),
                                 name="loopback-serve", daemon=True)
            self._threads.append(t)
            t.start()
        self._close_listener()  # plan done (or time up): later connections are refused

    def _serve(self, conn: socket.socket, step: Step, slot: int) -> None:
        try:
            with conn:
                conn.settimeout(5)
                if self.protocol == "http":
                    self._read_request(conn)
                    length = f"Content-Length: {len(self.data)}\r\n" if self.sized else ""
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\n"
                                 + length.encode() + b"Connection: close\r\n\r\n")
                self._send_paced(conn, step, slot)
                if step.then == "stall":
                    while self._alive():
                        time.sleep(0.05)
                elif step.then == "garbage":
                    self._send_garbage(conn)
                elif step.then in ("close", "cut"):
                    conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the client went away: that is its right

    def _read_request(self, conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request and len(request) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk

    def _send_paced(self, conn: socket.socket, step: Step, slot: int) -> None:
        total = len(self.data)
        limit = total
        if step.seconds is not None:
            limit = min(total, int(total * step.seconds / self.duration_s))
            limit -= limit % TS_PACKET
            if step.then == "cut":
                limit += TS_PACKET // 2
        chunk = TS_PACKET * 7  # one UDP-sized burst, as TS servers send
        t0 = time.monotonic()
        sent = 0
        while sent < limit and self._alive():
            due = t0 + (sent / total) * self.duration_s / self.speed
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            piece = self.data[sent : min(sent + chunk, limit)]
            conn.sendall(piece)
            sent += len(piece)
            self.bytes_sent[slot] = sent


    def _send_garbage(self, conn: socket.socket) -> None:
        rng = random.Random(0)
        rate = len(self.data) / self.duration_s * self.speed  # bytes a second, as the clip
        while self._alive():
            conn.sendall(rng.randbytes(TS_PACKET * 7))
            time.sleep(TS_PACKET * 7 / rate)


class UdpSender:
    """Pushes ``data`` (MPEG-TS) as datagrams to 127.0.0.1:``port`` at real-time pace,
    ``repeat`` times over, then goes quiet (a stall, as far as the receiver can tell)::

        with UdpSender(ts_bytes, duration_s=5.0, repeat=2) as tx:
            run_vidstream(tx.url)
    """

    def __init__(self, data: bytes, duration_s: float, *, repeat: int = 1,
                 lifetime_s: float = 60.0) -> None:
        self.data, self.duration_s, self.repeat = data, duration_s, repeat
        self.lifetime_s = lifetime_s
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))  # a free port for the receiver to listen on
        self.port = probe.getsockname()[1]
        probe.close()
        self.datagrams = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, name="loopback-udp", daemon=True)

    @property
    def url(self) -> str:
        return f"udp://127.0.0.1:{self.port}"

    def __enter__(self) -> UdpSender:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def _send(self) -> None:
        chunk = TS_PACKET * 7  # 1316 bytes: the usual TS-over-UDP datagram
        total = len(self.data)
        started = time.monotonic()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for _ in range(self.repeat):
                t0 = time.monotonic()
                for at in range(0, total, chunk):
                    if self._stop.is_set() or time.monotonic() - started > self.lifetime_s:
                        return
                    wait = t0 + at / total * self.duration_s - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    tx.sendto(self.data[at : at + chunk], ("127.0.0.1", self.port))
                    self.datagrams += 1


def parse_plan(text: str) -> list[Step]:
    """``"2:close,3:stall,all"`` -> [Step(2, close), Step(3, stall), Step(None, end)]."""
    steps = []
    for part in text.split(","):
        seconds, _, then = part.partition(":")
        steps.append(Step(None if seconds == "all" else float(seconds), then or "end"))
    return steps


def main() -> None:
    import av

    p = argparse.ArgumentParser(description="serve an MPEG-TS clip on 127.0.0.1, misbehaving")
    p.add_argument("clip", type=Path)
    p.add_argument("--protocol", choices=("http", "tcp"), default="http")
    p.add_argument("--plan", default="all", help="per connection: SECONDS:close|stall|end or "
                   "all, comma-separated")
    p.add_argument("--lifetime", type=float, default=120.0)
    args = p.parse_args()
    with av.open(str(args.clip)) as c:
        duration = c.duration / 1_000_000
    server = LoopbackServer(args.clip.read_bytes(), duration, parse_plan(args.plan),
                            protocol=args.protocol, lifetime_s=args.lifetime)
    with server:
        print(server.url, flush=True)
        while server._alive() and (server.plan or any(t.is_alive() for t in server._threads)):
            time.sleep(0.2)


if __name__ == "__main__":
    main()
