"""A sandbox worker: runs untrusted ``check_following`` functions, one forked child per call.

Run as a script by :mod:`hirfast.rewards.sandbox` (``python -I _sandbox_worker.py CONFIG``), never
imported by the trainer. Standard library only. The process (the *zygote*) never runs dataset code
itself: it sets up the layers that its children inherit, compiles sources (compiling runs no code)
and caches them by hash, then forks one child per call, which drops what it can, runs the function
and writes its verdict to a pipe.

Layers, each tried and reported in the hello message (what each protects against: the README,
section "HIR-16K type4 rows"):

- ``netns``: the zygote enters a new, empty network namespace (``unshare(CLONE_NEWNET)``; as a
  non-root user inside a new user namespace): no interface but a down loopback.
- ``chroot``: after importing the preloaded modules, the zygote changes root to an empty directory
  that its children cannot write: no file of the machine is visible.
- ``setuid``: children run as ``nobody`` (65534) with no supplementary groups (root only).
- ``rlimits``: children get RLIMIT_CPU, RLIMIT_AS, RLIMIT_NPROC = 0, RLIMIT_FSIZE, RLIMIT_NOFILE,
  RLIMIT_CORE = 0.
- ``seccomp``: children load a libseccomp filter that fails process creation, exec, sockets,
  mount/namespace calls, rlimit changes and signals to other processes with EPERM.

Protocol on stdin/stdout: 4-byte big-endian length + JSON. Request ``{"nonce", "hash", "code",
"responses", "timeout"}`` (one function, several responses: one child runs them in turn, each
within ``timeout``); reply ``{"nonce", "results": [...]}``, each ``{"ok": true, "value": bool}`` or
``{"ok": false, "reason", "detail"}``.
"""
import ctypes
import ctypes.util
import importlib
import json
import os
import resource
import select
import signal
import struct
import sys
import time

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
NOBODY = 65534
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_ERRNO_EPERM = 0x00050000 | 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1
DENIED_SYSCALLS = (
    "fork", "vfork", "clone", "clone3", "execve", "execveat", "socket", "socketpair", "connect",
    "bind", "listen", "accept", "accept4", "ptrace", "mount", "umount2", "unshare", "setns",
    "chroot", "pivot_root", "setrlimit", "prlimit64", "kill", "tkill", "tgkill", "setuid",
    "setgid", "setreuid", "setregid", "setresuid", "setresgid", "process_vm_writev",
    "process_vm_readv", "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd",
)


_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:  # find_library runs programs: look once, in the zygote
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _LIBC


def _enter_netns(libc, layers):
    if libc.unshare(CLONE_NEWNET) == 0:
        layers["netns"] = "unshare(CLONE_NEWNET)"
        return
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        try:  # map ourselves to root inside the new user namespace (needed to chroot there)
            with open("/proc/self/setgroups", "w") as f:
                f.write("deny")
            with open("/proc/self/uid_map", "w") as f:
                f.write(f"0 {uid} 1")
            with open("/proc/self/gid_map", "w") as f:
                f.write(f"0 {gid} 1")
        except OSError:
            pass
        layers["netns"] = "unshare(CLONE_NEWUSER|CLONE_NEWNET)"
        return
    layers["netns"] = None


def _seccomp_filter(layers):
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        layers["seccomp"] = None
        return None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        layers["seccomp"] = None
        return None
    denied = []
    for call in DENIED_SYSCALLS:
        nr = lib.seccomp_syscall_resolve_name(call.encode())
        if nr >= 0 and lib.seccomp_rule_add(ctx, SCMP_ACT_ERRNO_EPERM, nr, 0) == 0:
            denied.append(call)
    layers["seccomp"] = f"libseccomp, {len(denied)} calls fail with EPERM"
    return lib, ctx


class _Output:
    """sys.stdout/sys.stderr of a child: counts what is printed, keeps nothing."""

    def __init__(self, limit):
        self.limit, self.size = limit, 0

    def write(self, s):
        self.size += len(s)
        if self.size > self.limit:
            raise _OutputLimit(f"printed more than {self.limit} characters")
        return len(s)

    def flush(self):
        pass


class _OutputLimit(BaseException):
    pass


def _verdict(fn, response, out, limit):
    """One call of a dataset function as a result dict; never raises."""
    out.size = 0
    try:
        value = fn(response)
        if out.size > limit:
            raise _OutputLimit(f"printed more than {limit} characters")
        if type(value) is bool:
            return {"ok": True, "value": value}
        return {"ok": False, "reason": "non_bool", "detail": f"returned {type(value).__name__}"}
    except _OutputLimit as e:
        return {"ok": False, "reason": "output", "detail": str(e)}
    except SystemExit as e:
        return {"ok": False, "reason": "exit", "detail": f"SystemExit({e.code!r})"}
    except MemoryError:
        return {"ok": False, "reason": "memory", "detail": "MemoryError"}
    except RecursionError:
        return {"ok": False, "reason": "recursion", "detail": "RecursionError"}
    except BaseException as e:  # noqa: BLE001 - every failure of dataset code is a verdict
        if out.size > limit:
            return {"ok": False, "reason": "output", "detail": f"printed more than {limit} characters"}
        try:
            detail = f"{type(e).__name__}: {e}"[:200]
        except BaseException:  # noqa: BLE001 - a hostile __str__
            detail = type(e).__name__
        return {"ok": False, "reason": "raised", "detail": detail}


def _raising(exc):
    def fn(_):
        raise exc
    return fn


def _child(cfg, layers, seccomp, code, responses, timeout, wfd, devnull):
    """Runs in the forked child: drop, limit, run each response, report each verdict as a line,
    exit. Never returns."""
    out = _Output(cfg["output_limit"])
    try:
        os.setsid()
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with its worker
        if os.getppid() == 1:
            os._exit(1)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        # Keep only the verdict pipe: the worker's protocol pipes to the trainer are closed, so
        # dataset code cannot speak for the worker.
        os.closerange(3, wfd)
        os.closerange(wfd + 1, 65536)
        sys.stdout = sys.stderr = out
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a big write fails with EFBIG instead
        cpu = max(1, int(timeout * len(responses) + 0.999))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        mem = cfg["memory_mb"] << 20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["fsize_bytes"], cfg["fsize_bytes"]))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))
        if layers.get("setuid"):
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        _libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if seccomp is not None:
            lib, ctx = seccomp
            if lib.seccomp_load(ctx) != 0:
                raise RuntimeError("seccomp_load failed")
        sys.setrecursionlimit(cfg["recursion_limit"])
    except BaseException as e:  # noqa: BLE001 - a sandbox that cannot be set up runs nothing
        os.write(wfd, json.dumps({"ok": False, "reason": "sandbox",
                                  "detail": f"{type(e).__name__}: {e}"}).encode() + b"\n")
        os._exit(1)
    try:
        ns = {"__name__": "dataset_check", "__builtins__": __builtins__}
        try:
            exec(code, ns)
            fn = ns.get("check_following")
            setup = None if callable(fn) else {"ok": False, "reason": "no_function",
                                               "detail": "no check_following defined"}
        except BaseException as e:  # noqa: BLE001 - the module body failed: every call fails so
            setup = _verdict(_raising(e), None, out, cfg["output_limit"])
        for response in responses:
            result = setup or _verdict(fn, response, out, cfg["output_limit"])
            os.write(wfd, json.dumps(result).encode()[:65536] + b"\n")
    finally:
        os._exit(0)


def _run_call(cfg, layers, seccomp, code, responses, timeout, devnull):
    """Verdicts of one function on ``responses``: a child per run of them; a child that hangs
    on one (``timeout`` each) is killed and a new one takes the rest."""
    results = []
    while len(results) < len(responses):
        todo = responses[len(results):]
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(rfd)
            _child(cfg, layers, seccomp, code, todo, timeout, wfd, devnull)
        os.close(wfd)
        got, buf, timed_out = [], b"", False
        deadline = time.monotonic() + timeout
        try:
            while len(got) < len(todo):
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                ready, _, _ = select.select([rfd], [], [], left)
                if not ready:
                    continue
                data = os.read(rfd, 1 << 17)
                if not data:
                    break
                buf += data
                if len(buf) > (1 << 17) * len(todo):
                    break
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    try:
                        r = json.loads(line)
                    except ValueError:
                        r = None
                    if not isinstance(r, dict) or not (r.get("ok") is True and type(r.get("value")) is bool
                                                      or r.get("ok") is False and "reason" in r):
                        r = {"ok": False, "reason": "protocol", "detail": "garbled verdict"}
                    got.append(r)
                    deadline = time.monotonic() + timeout
        finally:
            os.close(rfd)
        if len(got) < len(todo):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        _, status = os.waitpid(pid, 0)
        results += got[:len(todo)]
        if len(results) == len(responses):
            break
        # The child stopped before its next verdict: that call fails, a new child takes the rest.
        if timed_out:
            results.append({"ok": False, "reason": "timeout", "detail": f"no verdict within {timeout:g} s"})
        elif os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            reason = "cpu_limit" if sig == signal.SIGXCPU else "crash"
            results.append({"ok": False, "reason": reason, "detail": f"killed by {name}"})
        else:
            status_ = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
            results.append({"ok": False, "reason": "exit",
                            "detail": f"exited with status {status_} and no verdict"})
    return results


def _read_exact(fd, n):
    buf = b""
    while len(buf) < n:
        data = os.read(fd, n - len(buf))
        if not data:
            return None
        buf += data
    return buf


def _write_msg(fd, obj):
    data = json.dumps(obj).encode()
    os.write(fd, struct.pack(">I", len(data)) + data)


def main():
    cfg = json.loads(sys.argv[1])
    disabled = set(cfg.get("disable", ()))
    # The protocol gets private descriptors; 0, 1 and 2 go to /dev/null.
    rfd, wfd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    layers = {}
    # Only real root can hand children to nobody (inside a new user namespace we are "root" with
    # no other uid mapped).
    real_root = os.geteuid() == 0
    libc = _libc()
    if "netns" not in disabled:
        _enter_netns(libc, layers)
    preloaded = []
    for name in cfg.get("preload", ()):
        try:
            importlib.import_module(name)
            preloaded.append(name)
        except Exception:  # noqa: BLE001 - a module missing here is missing in the sandbox too
            pass
    seccomp = _seccomp_filter(layers) if "seccomp" not in disabled else None
    layers["setuid"] = real_root and "setuid" not in disabled
    root = cfg["root"]
    if "chroot" not in disabled:
        try:
            os.chroot(root)
            os.chdir("/")
            layers["chroot"] = root
        except OSError as e:
            os.chdir(root)
            layers["chroot"] = None
            layers["chroot_error"] = str(e)
    else:
        os.chdir(root)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _write_msg(wfd, {"hello": True, "layers": layers, "preloaded": preloaded, "pid": os.getpid()})
    codes = {}
    while True:
        head = _read_exact(rfd, 4)
        if head is None:
            return
        req = json.loads(_read_exact(rfd, struct.unpack(">I", head)[0]))
        code = codes.get(req["hash"])
        cached, reply = code is not None, None
        if code is None:
            try:
                code = compile(req["code"], "<dataset function>", "exec")
            except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as e:
                reply = {"ok": False, "reason": "compile", "detail": f"{type(e).__name__}: {e}"[:200]}
            else:
                if len(codes) >= cfg.get("cache_size", 4096):
                    codes.clear()
                codes[req["hash"]] = code
        if reply is None:
            results = _run_call(cfg, layers, seccomp, code, req["responses"], req["timeout"], devnull)
        else:
            results = [reply] * len(req["responses"])
        _write_msg(wfd, {"nonce": req["nonce"], "results": results, "cached": cached})


if __name__ == "__main__":
    main()
