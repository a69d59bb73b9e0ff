"""A scripted OpenAI-compatible server on 127.0.0.1 for what a real one cannot be made to do on
demand: stay silent before its first chunk, answer 429/503, or pose as vLLM or another server.

It records every request body it receives; ``/v1/chat/completions`` answers with the next item of
``replies`` (a status code to refuse with, ``HOLD`` to say nothing until released or the client
leaves, or a list of text pieces streamed as chunks), the last one repeating.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOLD = "hold"
Reply = int | str | Sequence[str]


class LoopbackServer:
    def __init__(
        self,
        *,
        owned_by: str = "vllm",
        model: str = "stub-model",
        props: dict[str, Any] | None = None,
        replies: Sequence[Reply] = (("Hello", " world"),),
        delay_s: float = 0.0,
        final: dict[str, Any] | None = None,
    ) -> None:
        self.owned_by = owned_by
        self.model = model
        self.props = props
        self.replies = list(replies)
        self.delay_s = delay_s  # before a streamed reply's first chunk
        self.final = final  # extra fields of a last, choice-less chunk (llama.cpp's timings)
        self.active = 0
        self.most_active = 0  # the most requests answered at once
        self.bodies: list[dict[str, Any]] = []
        self.released = threading.Event()
        self.request_times: list[float] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.released.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next_reply(self) -> Reply:
        with self._lock:
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                pass

            def _json(self, status: int, data: object) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    entry = {"id": server.model, "object": "model", "created": 0}
                    entry["owned_by"] = server.owned_by
                    self._json(200, {"object": "list", "data": [entry]})
                elif self.path == "/props" and server.props is not None:
                    self._json(200, server.props)
                else:
                    self._json(404, {"error": {"message": "not found", "code": 404}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.bodies.append(body)
                    server.request_times.append(time.monotonic())
                reply = server._next_reply()
                if isinstance(reply, int):
                    self.send_response(reply)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Retry-After", "0")
                    payload = json.dumps({"error": {"message": "busy", "code": reply}}).encode()
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if reply == HOLD:
                    # Reading a long prompt: not a byte until released (or the test ends).
                    server.released.wait(60)
                    return
                with server._lock:
                    server.active += 1
                    server.most_active = max(server.most_active, server.active)
                try:
                    time.sleep(server.delay_s)
                    self._stream(reply)
                finally:
                    with server._lock:
                        server.active -= 1

            def _stream(self, reply: Sequence[str]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for index, piece in enumerate(reply):
                    last = index == len(reply) - 1
                    chunk = {
                        "id": "c",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": server.model,
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"content": piece},
                                "finish_reason": "stop" if last else None,
                            }
                        ],
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                if server.final is not None:
                    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0}
                    chunk.update(model=server.model, choices=[], **server.final)
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        return Handler
