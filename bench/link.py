"""A slow field link in user space: a TCP proxy on 127.0.0.1 that shapes what passes through.

Each direction of each connection is a serial line of ``rate_bps`` bits per second with a fixed
one-way ``latency_s``: a chunk read at time *t* starts leaving when the line is free, takes
``len * 8 / rate`` seconds to serialise, and is delivered ``latency_s`` after its last byte left.
Nothing on the machine's network changes (no ``tc``/netem), so other loopback users are unaffected;
only a client pointed at :attr:`ShapedLink.url` pays the cost. Bytes are counted per direction.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from types import TracebackType

CHUNK = 1024


class ShapedLink:
    """Forward ``127.0.0.1:<port>`` to ``target`` through a shaped line (a context manager)."""

    def __init__(self, target: tuple[str, int], rate_bps: int, latency_s: float) -> None:
        self.target = target
        self.rate = rate_bps / 8.0
        self.latency = latency_s
        self.up = 0
        self.down = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def __enter__(self) -> ShapedLink:
        self._spawn(self._accept)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing.set()
        self._server.close()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._pipe(client, upstream, "up")
            self._pipe(upstream, client, "down")

    def _pipe(self, src: socket.socket, dst: socket.socket, way: str) -> None:
        line: queue.Queue[tuple[float, bytes]] = queue.Queue()
        self._spawn(self._read, src, line, way)
        self._spawn(self._deliver, dst, line)

    def _read(self, src: socket.socket, line: queue.Queue[tuple[float, bytes]], way: str) -> None:
        free_at = 0.0
        while True:
            try:
                data = src.recv(CHUNK)
            except OSError:
                data = b""
            now = time.monotonic()
            if not data:
                line.put((max(now, free_at) + self.latency, b""))
                return
            with self._lock:
                if way == "up":
                    self.up += len(data)
                else:
                    self.down += len(data)
            free_at = max(now, free_at) + len(data) / self.rate
            line.put((free_at + self.latency, data))

    @staticmethod
    def _deliver(dst: socket.socket, line: queue.Queue[tuple[float, bytes]]) -> None:
        while True:
            due, data = line.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
            except OSError:
                return
