"""A fault-injecting HTTP proxy on 127.0.0.1 in front of an S3 endpoint (moto in the tests): every ``every``-th
request meets a fault instead of a clean answer, the kinds taken in turn:

- ``slowdown``: a 503 SlowDown error, as S3 answers when a prefix is throttled;
- ``drop``: the connection is closed before any answer;
- ``cut``: the answer's headers and half its body, then the connection closes;
- ``slow``: the clean answer after ``delay`` seconds.

So a bounded share of requests fail (1 in ``every``) and a client that retries gets through. ``faults`` counts
what was injected, so a test can check the faults really happened.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KINDS = ("slowdown", "drop", "cut", "slow")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class FaultyProxy:
    """The proxy; ``url`` is its endpoint. Use as a context manager."""

    def __init__(self, upstream: str, every: int = 4, delay: float = 1.0, kinds: tuple[str, ...] = KINDS):
        host, port = upstream.removeprefix("http://").rstrip("/").split(":")
        self.upstream = (host, int(port))
        self.every, self.delay = every, delay
        self.kinds = itertools.cycle(kinds)
        self.requests = 0
        self.faults: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()  # requests per object path, faulted or not
        self.writes: Counter[str] = Counter()  # PUT and POST requests per object path
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def next_fault(self, method: str, path: str) -> str | None:
        with self.lock:
            self.requests += 1
            self.paths[path.split("?")[0]] += 1
            if method in ("PUT", "POST"):
                self.writes[path.split("?")[0]] += 1
            if self.requests % self.every:
                return None
            kind = next(self.kinds)
            self.faults[kind] += 1
            return kind

    def __enter__(self) -> "FaultyProxy":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(proxy: FaultyProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def body(self) -> bytes | None:
            """The request body as sent, chunked framing and trailers included (the AWS SDK streams uploads
            chunked, with a checksum trailer), so it can be forwarded verbatim."""
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                raw = b""
                while True:
                    line = self.rfile.readline()
                    raw += line
                    size = int(line.split(b";")[0], 16)
                    if size == 0:
                        while (trailer := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                            raw += trailer
                        return raw + b"\r\n"
                    raw += self.rfile.read(size + 2)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else None

        def forward(self) -> None:
            body = self.body()
            fault = proxy.next_fault(self.command, self.path)
            if fault == "drop":
                self.close_connection = True
                return
            if fault == "slowdown":
                self.send_response(503, "Slow Down")
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(SLOWDOWN)))
                self.end_headers()
                self.wfile.write(SLOWDOWN)
                return
            if fault == "slow":
                time.sleep(proxy.delay)
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"expect"}}
            if body is not None and "Content-Length" not in self.headers:
                headers["Transfer-Encoding"] = "chunked"  # the body keeps its chunked framing
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            upstream.close()
            self.send_response(answer.status, answer.reason)
            for key, value in answer.getheaders():
                if key.lower() not in HOP_BY_HOP | {"content-length", "date", "server"}:
                    self.send_header(key, value)
            # a HEAD answer has no body but the object's length
            self.send_header("Content-Length", answer.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data)))
            self.end_headers()
            if fault == "cut" and self.command != "HEAD" and len(data) > 1:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

    return Handler
