"""A TCP proxy that a fault-injection test owns: the platform's processes reach a shared
service (S3, PostgreSQL) through it, and the test takes the service "down" for them only.

``cut()`` drops every open connection; ``down()`` does and resets each new one until ``up()``;
``hang()`` drops them too but leaves new ones unanswered; ``outage(seconds)`` is
``down()`` then ``up()`` on a timer. The shared service itself is never
touched (docs: /work/helpers/faults.md, "Fault injection rule").
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time


class FaultProxy:
    def __init__(self, host: str, port: int):
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.refusing = False
        self.mode = ""  # while refusing: "refuse" or "hang"
        self.held: list[socket.socket] = []  # connections left unanswered (``hang``)
        self.closed = False
        self.refused = 0  # connections turned away while down
        self.down_at: float | None = None
        self.up_at: float | None = None
        self.accepting: threading.Thread | None = None

    @classmethod
    def to(cls, address: str) -> FaultProxy:
        """A proxy to ``host:port`` (or a URL's netloc), already accepting."""
        host, _, port = address.split("://")[-1].split("/")[0].rpartition(":")
        return cls(host, int(port)).start()

    def start(self) -> FaultProxy:
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()
        return self

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting and drop every connection. The listener is closed by the thread
        that accepts on it, never from here: closed while that thread is about to call
        ``accept`` on its descriptor number, the number goes to the next socket made — the
        next test's proxy's listener — and the old thread would accept that proxy's
        connections and pipe them to the service while the new proxy is down (seen:
        ``test_s3_calls_give_up_after_the_retry_window``, "DID NOT RAISE", under py-spy)."""
        self.closed = True
        if self.accepting is None:
            self.listener.close()
        else:
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept(): EINVAL from now
            self.accepting.join(timeout=10)
        self.cut()
        with self.lock:
            held, self.held = self.held, []
        for sock in held:
            _reset(sock)

    def down(self) -> None:
        """Drop every connection; new ones are reset until ``up()``."""
        self._fail("refuse")

    def hang(self) -> None:
        """Drop every connection; new ones are accepted and never answered until ``up()``
        (a load balancer or firewall that swallows packets: the client's connect hangs
        instead of failing)."""
        self._fail("hang")

    def up(self) -> None:
        """Serve again. Connections left hanging stay so (their packets were lost): the
        client has to give up on them itself."""
        with self.lock:
            self.refusing = False
            self.mode = ""
        self.up_at = time.monotonic()

    def outage(self, seconds: float) -> threading.Timer:
        """``down()`` now and ``up()`` after ``seconds`` (the fault window)."""
        self.down()
        timer = threading.Timer(seconds, self.up)
        timer.daemon = True
        timer.start()
        return timer

    def _fail(self, mode: str) -> None:
        with self.lock:  # a connection being set up now is refused, not left open
            self.refusing = True
            self.mode = mode
        self.down_at = time.monotonic()
        self.cut()

    def cut(self) -> None:
        """Drop every open connection and go on serving new ones (a load balancer's restart,
        a flaky network dropping a long-lived websocket)."""
        with self.lock:  # held: a link cannot close a socket between the two
            doomed, self.open = self.open, set()
            for sock in doomed:
                _abort(sock)  # its pipe threads wake and the last one closes it (with RST)

    def _accept(self) -> None:
        try:
            while not self.closed:
                try:
                    client, _ = self.listener.accept()
                except OSError:
                    continue  # closing (the loop ends), or one connection's trouble only
                if self.closed:
                    _reset(client)
                    return
                self._connect(client)
        finally:
            self.listener.close()

    def _connect(self, client: socket.socket) -> None:
        if self._turn_away(client):
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
        except OSError:
            _reset(client)
            return
        with self.lock:
            # ``down()`` may have come while the upstream connection was being made
            # (slow under load): that connection would have outlived the outage.
            late = self.refusing
            if not late:
                self.open |= {client, upstream}
        if late:
            _reset(upstream)
            self._turn_away(client) or _reset(client)
            return
        link = _Link(self, client, upstream)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b, link), daemon=True).start()

    def _turn_away(self, client: socket.socket) -> bool:
        """While down: reset (``down``) or hold unanswered (``hang``) a new connection."""
        with self.lock:
            if not self.refusing:
                return False
            self.refused += 1
            if self.mode == "hang":
                self.held.append(client)
                return True
        _reset(client)
        return True

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, link: _Link) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            # The thread of the other direction sits in ``recv`` on ``sink``: shutting
            # its read side down wakes it (a bare close() from here would not, and the
            # connection would stay half-open on the far side).
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RD)
            link.done()


class _Link:
    """A proxied connection's two sockets, closed by the last of its two pipe threads (and
    then no longer the proxy's to cut), under the proxy's lock.

    Never by another thread: a socket closed while a thread is about to use it frees its
    descriptor number, a socket accepted meanwhile may get that number, and the thread's
    ``recv`` then reads the new connection — a request sent "while down" could reach S3
    through a previous connection's pipe that way."""

    def __init__(self, proxy: FaultProxy, *socks: socket.socket):
        self.proxy, self.socks, self.running = proxy, socks, 2

    def done(self) -> None:
        with self.proxy.lock:
            self.running -= 1
            if self.running == 0:
                self.proxy.open.difference_update(self.socks)
                for sock in self.socks:
                    with contextlib.suppress(OSError):
                        sock.close()


def _abort(sock: socket.socket) -> None:
    """Make a piped socket's close send RST, and wake the pipe thread reading it
    (``shutdown(SHUT_RD)`` sends nothing); its ``_Link`` closes it."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)


def _reset(sock: socket.socket) -> None:
    """Close with RST, as a server that went away does (ECONNRESET on the other side): a
    socket no pipe thread uses (turned away, held, or not yet linked)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()
