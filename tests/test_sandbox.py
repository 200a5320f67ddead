"""Dataset rule functions run in the sandbox: verdicts, failures by name, and hostile functions
contained (each test shows the harm did not happen, not only that the verdict is False)."""
from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from hirfast.rewards.sandbox import RuleSandbox, normalize_source

TIMEOUT = 1.0


@pytest.fixture(scope="module")
def box():
    with RuleSandbox(2, timeout_s=TIMEOUT, memory_mb=512, output_limit=10_000,
                     preload=("re", "json", "string", "os", "sys", "shutil", "socket")) as b:
        yield b


def fn(body: str) -> str:
    return "import os, sys, shutil, socket\ndef check_following(response):\n" + "\n".join(
        "    " + line for line in body.strip("\n").splitlines()) + "\n"


def run(box, source, response="hello world"):
    """(verdict, the failure reasons this call added)."""
    before = dict(box.failures)
    verdict = box.check([(source, response)])[0]
    added = {k: v - before.get(k, 0) for k, v in box.failures.items() if v != before.get(k, 0)}
    return verdict, added


def still_works(box):
    assert box.check([(fn("return response.startswith('ok')"), "ok!"),
                      (fn("return response.startswith('ok')"), "no")]) == [True, False]


# --- ordinary functions --------------------------------------------------------------------------

def test_verdicts_of_ordinary_functions(box):
    src = "import re\ndef check_following(response):\n    return bool(re.search(r'\\d', response))"
    assert box.check([(src, "abc 1"), (src, "abc"), (src, "2")]) == [True, False, True]


def test_sources_without_def_are_completed():
    assert normalize_source("check_following(response):\n    return True").startswith(
        "def check_following(response):")
    body = normalize_source("return len(response) > 3")
    assert body.startswith("def check_following(response):\n    return len")


def test_source_without_def_runs(box):
    assert box.check([("check_following(response):\n    return 'x' in response", "axb"),
                      ("return len(response.split()) == 2", "two words")]) == [True, True]


@pytest.mark.parametrize("body,reason", [
    ("raise ValueError('nope')", "raised"),
    ("return 1", "non_bool"),
    ("return None", "non_bool"),
    ("sys.exit(0)", "exit"),
])
def test_failures_are_named_and_counted(box, body, reason):
    verdict, added = run(box, fn(body))
    assert verdict is False and added == {reason: 1}


def test_syntax_error_and_missing_function(box):
    assert run(box, "def check_following(:\n  pass")[1] == {"compile": 1}
    assert run(box, "def other(response):\n    return True")[1] == {"no_function": 1}


def test_first_failures_logged_with_reason(caplog):
    with caplog.at_level("WARNING", logger="hirfast.rewards.sandbox"), \
            RuleSandbox(1, timeout_s=TIMEOUT, max_logged=2) as b:
        for marker in ("marker-1", "marker-2", "marker-3"):
            b.check([(f"def check_following(r):\n    raise KeyError({marker!r})", "x")])
        assert [m.split(" (function")[0] for m in b.first_failures] == [
            "raised: KeyError: 'marker-1'", "raised: KeyError: 'marker-2'"]
        assert b.metrics()["rule_fail_raised"] == 3
    assert "marker-1" in caplog.text and "marker-3" not in caplog.text


def test_compiled_functions_cached_by_hash():
    with RuleSandbox(1, timeout_s=TIMEOUT) as b:
        src = fn("return True")
        b.check([(src, "a")])
        b.check([(src, "b"), (src, "c")])
        b.check([(fn("return False"), "a")])
        assert b.metrics()["rule_compiles"] == 2


# --- hostile functions ---------------------------------------------------------------------------

def test_infinite_loop_times_out_and_worker_goes_on(box):
    t0 = time.monotonic()
    verdict, added = run(box, fn("while True:\n    pass"))
    assert verdict is False and added in ({"timeout": 1}, {"cpu_limit": 1})
    assert time.monotonic() - t0 < TIMEOUT + 3
    still_works(box)


def test_timeout_is_per_call_in_a_batch(box):
    # The second response hangs: it alone fails, the ones after it are still checked.
    src = fn("if response == 'hang':\n    while True: pass\nreturn response == 'yes'")
    assert box.check([(src, "yes"), (src, "hang"), (src, "yes"), (src, "no")]) == [
        True, False, True, False]


def test_fork_bomb_is_contained(box):
    verdict, added = run(box, fn("while True:\n    os.fork()"))
    assert verdict is False and added == {"raised": 1}
    assert "Operation not permitted" in box.last_failure
    still_works(box)


def test_fork_fails_even_without_seccomp():
    # RLIMIT_NPROC = 0 alone stops process creation (as nobody, or any uid without CAP_SYS_RESOURCE).
    with RuleSandbox(1, timeout_s=TIMEOUT, disable=("seccomp",), preload=("os",)) as b:
        if not b.layers.get("setuid"):
            pytest.skip("RLIMIT_NPROC does not bind root: this layer needs setuid (run as root)")
        src = "import os\ndef check_following(r):\n    pid = os.fork()\n    return True"
        assert b.check([(src, "x")]) == [False]
        assert "BlockingIOError" in b.last_failure, b.last_failure


def test_ten_gigabyte_allocation_fails_with_memory(box):
    verdict, added = run(box, fn("x = bytearray(10 * 1024 ** 3)\nreturn True"))
    assert verdict is False and added == {"memory": 1}
    still_works(box)


class _Listener:
    """A TCP server on the host's loopback that records whether anyone connected."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def _connect_src(port):
    return fn(f"s = socket.socket()\ns.settimeout(0.5)\ns.connect(('127.0.0.1', {port}))\nreturn True")


def test_network_connection_is_refused(box):
    server = _Listener()
    try:
        # The listener is reachable from the test process itself...
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
        time.sleep(0.3)
        reached = server.connections
        assert reached == 1
        verdict, added = run(box, _connect_src(server.port))
        time.sleep(0.3)
        assert verdict is False and added == {"raised": 1}
        assert server.connections == reached  # ... but not from the sandbox
    finally:
        server.close()


@pytest.mark.parametrize("only", ["netns", "seccomp"])
def test_each_network_layer_alone_blocks_a_connection(only):
    others = [x for x in ("netns", "seccomp") if x != only]
    with RuleSandbox(1, timeout_s=TIMEOUT, disable=others, preload=("os", "sys", "shutil", "socket")) as b:
        if not b.layers.get(only):
            pytest.skip(f"layer {only} is not available on this machine")
        server = _Listener()
        try:
            assert b.check([(_connect_src(server.port), "x")]) == [False]
            time.sleep(0.3)
            assert server.connections == 0
            detail = b.first_failures[0]
            # netns: the namespace's own loopback is down; seccomp: socket() itself is refused.
            expected = "Operation not permitted" if only == "seccomp" else "Network is unreachable"
            assert expected in detail, detail
        finally:
            server.close()


def test_write_outside_its_directory_does_not_happen(box, tmp_path):
    target = tmp_path / "written.txt"
    verdict, added = run(box, fn(f"open({str(target)!r}, 'w').write('x')\nreturn True"))
    assert verdict is False and added == {"raised": 1}
    assert not target.exists()
    verdict, _ = run(box, fn("open('/here.txt', 'w').write('x')\nreturn True"))
    assert verdict is False


def test_reading_etc_passwd_fails(box):
    verdict, added = run(box, fn("return 'root' in open('/etc/passwd').read()"))
    assert verdict is False and added == {"raised": 1}


def test_os_exit_is_a_named_failure(box):
    verdict, added = run(box, fn("os._exit(3)"))
    assert verdict is False and added == {"exit": 1}
    still_works(box)


def test_recursion_bomb(box):
    verdict, added = run(box, fn("def f(n):\n    return f(n + 1)\nreturn f(0)"))
    assert verdict is False and added == {"recursion": 1}
    # With the interpreter's limit raised, the frames grow until the memory limit, the time limit
    # or the C stack stops them (which one depends on the Python build): the child fails, not us.
    verdict, added = run(box, fn("sys.setrecursionlimit(10 ** 8)\ndef f(n):\n    return f(n + 1)\n"
                                 "return f(0)"))
    assert verdict is False and set(added) <= {"crash", "recursion", "memory", "timeout"} and added
    still_works(box)


def test_deleting_files_does_not_happen(box, tmp_path):
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    verdict, _ = run(box, fn(f"os.remove({str(victim)!r})\nreturn True"))
    assert verdict is False
    verdict, _ = run(box, fn(f"shutil.rmtree({str(tmp_path)!r})\nreturn True"))
    assert verdict is False
    assert victim.read_text() == "precious"


def test_huge_output_is_a_named_failure(box):
    verdict, added = run(box, fn("while True:\n    print('x' * 100000)"))
    assert verdict is False and added == {"output": 1}
    # Writing straight to file descriptor 1 reaches /dev/null, not the trainer's terminal.
    verdict, added = run(box, fn("for _ in range(1000):\n    os.write(1, b'y' * 100000)\nreturn True"))
    assert verdict is True and added == {}
    still_works(box)


def test_killed_worker_is_replaced(box):
    victim = box._idle.queue[0]
    victim.proc.kill()
    victim.proc.wait()
    for _ in range(4):  # whichever worker the calls land on, each answers
        still_works(box)
    assert box.metrics()["rule_workers_replaced"] >= 1


def test_layers_reported(box):
    assert set(box.layers) >= {"netns", "seccomp", "setuid", "chroot"}
    if os.geteuid() == 0:  # the machines this project runs on (and CI) run as root
        assert box.layers["netns"] and box.layers["seccomp"] and box.layers["setuid"] \
            and box.layers["chroot"]


def test_function_cannot_reach_the_workers_protocol_pipes(box):
    # Only the child's own verdict pipe (and 0-2 on /dev/null) is open: writing a forged reply to
    # the worker's protocol descriptors fails.
    src = fn("opened = []\nfor fd in range(3, 64):\n    try:\n        os.fstat(fd)\n"
             "        opened.append(fd)\n    except OSError:\n        pass\nreturn len(opened) == 1")
    assert box.check([(src, "x")]) == [True]


def test_sleeping_function_times_out_and_leaves_no_process(box):
    import subprocess
    src = "import time\ndef check_following(r):\n    time.sleep(1000)\n    return True"
    assert box.check([(src, "x")]) == [False]
    time.sleep(0.3)
    workers = {str(w.proc.pid) for w in box._idle.queue if w is not None}
    ps = subprocess.run(["ps", "-eo", "pid,ppid,stat"], capture_output=True, text=True).stdout
    children = [line for line in ps.splitlines()[1:] if line.split()[1] in workers]
    assert workers and not children, children


def test_a_worker_that_cannot_restart_fails_calls_without_hanging(monkeypatch):
    import hirfast.rewards.sandbox as sb

    ok = "def check_following(r):\n    return True"
    with RuleSandbox(1, timeout_s=TIMEOUT) as b:
        victim = b._idle.queue[0]
        victim.proc.kill()
        victim.proc.wait()
        real = sb._Worker

        def cannot_start(cfg):
            raise RuntimeError("no processes left")

        monkeypatch.setattr(sb, "_Worker", cannot_start)
        assert b.check([(ok, "x")]) == [False]
        assert b.check([(ok, "y")]) == [False]  # the slot is still there: no hang
        assert b.failures["worker_lost"] == 2
        monkeypatch.setattr(sb, "_Worker", real)
        assert b.check([(ok, "z")]) == [True]  # started again on the next call


def test_trainer_environment_is_not_visible(box, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    with RuleSandbox(1, timeout_s=TIMEOUT, preload=("os",)) as b:  # started with the key set
        src = "import os\ndef check_following(r):\n    return 'OPENAI_API_KEY' not in os.environ"
        assert b.check([(src, "x")]) == [True]
