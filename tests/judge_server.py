"""A small, real OpenAI-compatible chat-completions server for tests and benchmarks (stdlib only).

``POST /v1/chat/completions`` answers as a deterministic "model": it reads the judge prompt's
``[Response]`` and ``[Criterion]`` sections and says YES iff every word the criterion puts in
single quotes occurs in the response (case-insensitive), NO otherwise. Modes, settable while it
runs: ``"ok"``, ``"slow"`` (sleeps ``delay`` seconds first), ``"garbage"`` (an answer that is
neither yes nor no), ``"broken_json"`` (HTTP 200 with a body that is not JSON), ``"error"`` (HTTP
500), and ``fail_first`` (that many 503s before normal answers). It counts the requests it got.
``before_answer``, when set, is called (in the request's thread) before each answer is sent: a
test can hold answers back until it has seen what the client did meanwhile.

For a server with a real model behind the same API see tests/llama_server.py.
"""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def deterministic_answer(prompt: str) -> str:
    response = prompt.split("[Response]\n", 1)[-1].split("\n\n[Criterion]", 1)[0]
    criterion = prompt.split("[Criterion]\n", 1)[-1].split("\n\n", 1)[0]
    words = re.findall(r"'([^']+)'", criterion)
    return "YES" if words and all(w.lower() in response.lower() for w in words) else "NO"


class JudgeServer:
    def __init__(self, mode: str = "ok", delay: float = 0.0, fail_first: int = 0):
        self.mode, self.delay, self.fail_first = mode, delay, fail_first
        self.requests = 0
        self.before_answer = None
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, code: int, body: bytes, ctype="application/json"):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                req = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests += 1
                    failing = server.fail_first > 0
                    server.fail_first -= failing
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, b'{"error": {"message": "not found"}}')
                if failing:
                    return self._send(503, b'{"error": {"message": "busy"}}')
                if server.mode == "slow":
                    time.sleep(server.delay)
                if server.before_answer is not None:
                    server.before_answer()
                if server.mode == "error":
                    return self._send(500, b'{"error": {"message": "internal"}}')
                if server.mode == "broken_json":
                    return self._send(200, b"<html>not json")
                prompt = req["messages"][-1]["content"]
                answer = ("I would rather not say." if server.mode == "garbage"
                          else deterministic_answer(prompt))
                body = {"id": "chatcmpl-test", "object": "chat.completion", "created": 0,
                        "model": req.get("model", ""),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": answer}}],
                        "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 1,
                                  "total_tokens": len(prompt.split()) + 1}}
                self._send(200, json.dumps(body).encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> "JudgeServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
