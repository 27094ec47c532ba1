# The trusted checker of assert and function-call tests (reward integrity).
#
# Two roles in two processes (two wasm instances on the wasm backend):
# * the checker runs the test code (or the call) and reports on its standard output, which the
#   submission cannot write;
# * the runner runs the submission and answers the checker's requests (call this function,
#   read this attribute, iterate this object) with plain, type-checked data.
#
# The test code and its expected values never reach the runner: the checker reads them after
# the runner exists, from a channel the runner cannot read, and on Linux it makes itself
# non-dumpable first, so the runner (same uid) cannot read its memory or file descriptors.
# Values crossing from the runner are rebuilt from data as exact builtin types (int, float,
# complex, bool, None, str, bytes, list, tuple, dict, set, frozenset); anything else stays in
# the runner as an opaque handle that compares equal only to itself, so an object whose
# `__eq__` always returns true cannot pass `assert candidate(x) == y`. Builtins the test code
# uses are the checker's own: a submission redefining `abs` or `sorted` changes only its side.
#
# Usage: python3 -s -B check.py fork [SUBMISSION] (one process forks the runner; Linux)
#        python -B check.py checker | runner [SUBMISSION] (wasm: the host relays the lines)
# The checker's first input line is the JSON spec {"mode": "assert", "code": ...} or
# {"mode": "call", "fn": NAME, "args": JSON}; its report is one line "R <word> [detail]".
import sys

if sys.path and sys.path[0].endswith("/judge"):
    del sys.path[0]

import builtins
import json
import os

# The submission: argument 2 (default /src/main.py).
SUBMISSION = sys.argv[2] if len(sys.argv) > 2 else "/src/main.py"
PLAIN_SCALARS = (int, float, bool, str, type(None))


# ---- encoding of values (runner side) and decoding (checker side) ----


def encode(value, handles, depth=0):
    """Plain data as JSON-ready values; anything else becomes a handle kept in `handles`."""
    t = type(value)
    if depth > 200:
        raise ValueError("the value is nested too deeply")
    if t in PLAIN_SCALARS:
        if t is float and value != value:
            return {"nan": 1}
        if t is float and value in (float("inf"), float("-inf")):
            return {"inf": 1 if value > 0 else -1}
        return value
    if t is list:
        return [encode(v, handles, depth + 1) for v in value]
    if t is tuple:
        return {"t": [encode(v, handles, depth + 1) for v in value]}
    if t is set or t is frozenset:
        return {"s" if t is set else "f": [encode(v, handles, depth + 1) for v in value]}
    if t is dict:
        return {"d": [[encode(k, handles, depth + 1), encode(v, handles, depth + 1)] for k, v in value.items()]}
    if t is bytes:
        return {"b": value.hex()}
    if t is complex:
        return {"c": [value.real, value.imag]}
    if t is type(os):
        return {"m": value.__name__}
    key = len(handles)
    handles.append(value)
    return {"h": key}


def decode(data, link):
    """Rebuilds `data` from exact builtin types; handles become `Remote` objects."""
    t = type(data)
    if t in PLAIN_SCALARS:
        return data
    if t is list:
        return [decode(v, link) for v in data]
    if t is not dict or len(data) != 1:
        raise TypeError("malformed value from the submission")
    ((tag, v),) = data.items()
    if tag == "t":
        return tuple(decode(x, link) for x in v)
    if tag == "s":
        return {decode(x, link) for x in v}
    if tag == "f":
        return frozenset(decode(x, link) for x in v)
    if tag == "d":
        return {decode(k, link): decode(x, link) for k, x in v}
    if tag == "b":
        return bytes.fromhex(v)
    if tag == "c":
        return complex(float(v[0]), float(v[1]))
    if tag == "nan":
        return float("nan")
    if tag == "inf":
        return float("inf") if v > 0 else float("-inf")
    if tag == "m":
        return __import__(str(v), fromlist=["_"])
    if tag == "h":
        return Remote(link, int(v))
    raise TypeError("malformed value from the submission")


def to_wire(value, depth=0):
    """Checker-side arguments as data: plain values and the submission's own handles only."""
    t = type(value)
    if depth > 200:
        raise ValueError("the argument is nested too deeply")
    if t in PLAIN_SCALARS:
        if t is float and value != value:
            return {"nan": 1}
        if t is float and value in (float("inf"), float("-inf")):
            return {"inf": 1 if value > 0 else -1}
        return value
    if t is list:
        return [to_wire(v, depth + 1) for v in value]
    if t is tuple:
        return {"t": [to_wire(v, depth + 1) for v in value]}
    if t is set or t is frozenset:
        return {"s" if t is set else "f": [to_wire(v, depth + 1) for v in value]}
    if t is dict:
        return {"d": [[to_wire(k, depth + 1), to_wire(v, depth + 1)] for k, v in value.items()]}
    if t is bytes:
        return {"b": value.hex()}
    if t is complex:
        return {"c": [value.real, value.imag]}
    if t is Remote:
        return {"h": object.__getattribute__(value, "_key")}
    raise TypeError("a %s cannot be passed to the submission" % t.__name__)


def from_wire(data, handles):
    """Runner side: arguments from the checker (handles resolve to the runner's objects)."""
    t = type(data)
    if t in PLAIN_SCALARS:
        return data
    if t is list:
        return [from_wire(v, handles) for v in data]
    ((tag, v),) = data.items()
    if tag == "h":
        return handles[v]
    if tag == "t":
        return tuple(from_wire(x, handles) for x in v)
    if tag == "s":
        return {from_wire(x, handles) for x in v}
    if tag == "f":
        return frozenset(from_wire(x, handles) for x in v)
    if tag == "d":
        return {from_wire(k, handles): from_wire(x, handles) for k, x in v}
    if tag == "b":
        return bytes.fromhex(v)
    if tag == "c":
        return complex(v[0], v[1])
    if tag == "nan":
        return float("nan")
    if tag == "inf":
        return float("inf") if v > 0 else float("-inf")
    raise TypeError("malformed argument")


# ---- the checker ----


class NotPlain(TypeError):
    """A test used an object of the submission where only plain data can be trusted."""


class SubmissionEnded(Exception):
    """The submission's process ended (or broke the channel) while a test needed it."""


class Link:
    """The checker's end of the channel to the runner; `ended()` says how the runner ended
    ("exit N" or "signal N") once the channel closed."""

    def __init__(self, send, recv, ended):
        self.send, self.recv, self.ended = send, recv, ended

    def ask(self, request):
        self.send(json.dumps(request, allow_nan=False))
        line = self.recv()
        if not line:
            raise SubmissionEnded("the submission ended before its tests did")
        reply = parse(line)
        if "raise" in reply:
            e = remote_exception(reply)
            # A StopIteration out of a call would end the test's own loop (`map`, `zip`)
            # early; only iteration may raise it.
            if type(e) is StopIteration and request.get("op") != "next":
                e = RuntimeError("the submission raised StopIteration")
            raise e
        if "ok" not in reply:
            raise SubmissionEnded("the submission broke the channel")
        return decode(reply["ok"], self)


def remote_exception(reply):
    name, msg = str(reply.get("raise")), str(reply.get("msg", ""))
    cls = getattr(builtins, name, None)
    if (
        type(cls) is type
        and issubclass(cls, Exception)
        and cls.__module__ == "builtins"
        and not issubclass(cls, (StopAsyncIteration,))
    ):
        try:
            return cls(msg)
        except Exception:
            pass
    return RuntimeError("%s: %s" % (name, msg))


class Remote:
    """An object that stays in the submission: it can be called, read, iterated, indexed
    and measured there; it equals only itself."""

    __slots__ = ("_link", "_key")

    def __init__(self, link, key):
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_key", key)

    def _op(self, op, **extra):
        req = {"op": op, "h": object.__getattribute__(self, "_key")}
        req.update(extra)
        return object.__getattribute__(self, "_link").ask(req)

    def __call__(self, *args, **kwargs):
        return self._op(
            "call",
            a=[to_wire(a) for a in args],
            k={str(k): to_wire(v) for k, v in kwargs.items()},
        )

    def __getattr__(self, name):
        return self._op("getattr", n=name)

    def __iter__(self):
        return self._op("iter")

    def __next__(self):
        return self._op("next")

    def __len__(self):
        return self._op("len")

    def __getitem__(self, key):
        return self._op("getitem", a=[to_wire(key)])

    def __contains__(self, item):
        return self._op("contains", a=[to_wire(item)])

    def __bool__(self):
        raise NotPlain("the submission returned an object, not plain data")

    def __eq__(self, other):
        raise NotPlain("the submission returned an object, not plain data")

    __ne__ = __eq__
    __hash__ = object.__hash__

    def __repr__(self):
        return "<object of the submission>"


def names_of(code, acc):
    acc.update(code.co_names)
    for c in code.co_consts:
        if type(c) is type(code):
            names_of(c, acc)
    return acc


def parse(line):
    """A message from the runner: a JSON object, or the channel is broken."""
    try:
        msg = json.loads(line)
    except ValueError:
        msg = None
    if type(msg) is not dict:
        raise SubmissionEnded("the submission broke the channel")
    return msg


def check(spec, link, report):
    """Runs one test in the checker; reports pass/fail/error/result, or how the submission
    ended."""
    try:
        run_test(spec, link, report)
    except (AssertionError, NotPlain) as e:
        report("fail", type(e).__name__)
    except SubmissionEnded:
        report(*link.ended())
    except BaseException as e:
        import traceback

        traceback.print_exc()
        report("error", type(e).__name__)


def run_test(spec, link, report):
    start = link.recv()
    if not start:
        raise SubmissionEnded("the submission ended before its tests")
    hello = parse(start)
    if hello.get("ready") is not True:
        if "exit" in hello:
            report("exit", str(int(hello["exit"])))
        else:
            report("error", str(hello.get("raise", "Exception")).split()[0])
        return
    g = {"__name__": "__main__", "__builtins__": builtins}
    if spec["mode"] == "assert":
        code = compile(spec["code"], "<tests>", "exec")
        wanted = sorted(n for n in names_of(code, set()) if not hasattr(builtins, n))
    else:
        code = None
        wanted = [spec["fn"], "Solution"]
    found = link.ask({"op": "globals", "names": wanted})
    if type(found) is not dict:
        raise SubmissionEnded("the submission broke the channel")
    g.update({k: v for k, v in found.items() if type(k) is str and k in wanted})
    if code is not None:
        exec(code, g)
        report("pass", "")
        return
    fn = g.get(spec["fn"])
    if fn is None and "Solution" in g:
        fn = getattr(g["Solution"](), spec["fn"])
    if fn is None:
        raise NameError("function %s is not defined" % spec["fn"])
    args = json.loads(spec["args"])
    res = fn(**args) if type(args) is dict else fn(*args)
    try:
        text = json.dumps(res, allow_nan=False)
    except (TypeError, ValueError):
        raise NotPlain("the result is not JSON data")
    report("result", text)


# ---- the runner ----


def serve(recv, send):
    """Runs the submission, then answers requests until the channel closes."""
    handles = []
    g = {"__name__": "__main__", "__builtins__": builtins, "__file__": SUBMISSION}
    mod = type(sys)("__main__")
    mod.__dict__.update(g)
    g = mod.__dict__
    sys.modules["__main__"] = mod
    sys.argv[:] = [SUBMISSION]
    sys.path.insert(0, os.path.dirname(SUBMISSION))
    try:
        with open(SUBMISSION, "rb") as f:
            source = f.read()
        exec(compile(source, SUBMISSION, "exec"), g)
        hello = {"ready": True}
    except SystemExit as e:
        c = e.code
        hello = {"ready": False, "exit": 0 if c is None else (c if type(c) is int else 1)}
    except BaseException as e:
        import traceback

        traceback.print_exc()
        hello = {"ready": False, "raise": type(e).__name__}
    flush()
    send(json.dumps(hello))
    if not hello["ready"]:
        return
    while True:
        line = recv()
        if not line:
            return
        req = json.loads(line)
        try:
            reply = {"ok": answer(req, g, handles)}
        except BaseException as e:
            reply = {"raise": type(e).__name__, "msg": str(e)[:200]}
        flush()
        try:
            out = json.dumps(reply, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            out = json.dumps({"raise": "TypeError", "msg": "the value is not plain data"})
        send(out)


def answer(req, g, handles):
    op = req["op"]
    if op == "globals":
        return {"d": [[n, encode(g[n], handles)] for n in req["names"] if n in g]}
    obj = handles[req["h"]]
    args = [from_wire(a, handles) for a in req.get("a", [])]
    if op == "call":
        kwargs = {k: from_wire(v, handles) for k, v in req.get("k", {}).items()}
        return encode(obj(*args, **kwargs), handles)
    if op == "getattr":
        return encode(getattr(obj, req["n"]), handles)
    if op == "iter":
        return encode(iter(obj), handles)
    if op == "next":
        return encode(next(obj), handles)
    if op == "len":
        return encode(len(obj), handles)
    if op == "getitem":
        return encode(obj[args[0]], handles)
    if op == "contains":
        return encode(args[0] in obj, handles)
    raise ValueError("unknown request")


def flush():
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except Exception:
            pass


# ---- wiring ----


def line_reader(fd):
    f = os.fdopen(fd, "rb", buffering=1 << 16)

    def recv():
        return f.readline().decode()

    return recv


def line_writer(fd):
    f = os.fdopen(fd, "wb", buffering=1 << 16)

    def send(text):
        f.write(text.encode() + b"\n")
        f.flush()

    return send


def report_to(stream):
    def report(word, detail):
        stream.write(("R %s %s\n" % (word, detail.replace("\n", " "))).encode())
        stream.flush()

    return report


def fork_main():
    """Linux: become non-dumpable (the runner, same uid, can then neither read this process's
    memory nor open its descriptors, not even through a descriptor opened early), fork the
    runner, then read the spec."""
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    PR_SET_DUMPABLE = 4
    if prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise SystemExit("prctl(PR_SET_DUMPABLE) failed")
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        # The submission may use its own /proc/self (subprocess lists /proc/self/fd).
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        os.close(req_w)
        os.close(rep_r)
        # Nothing of the checker's input or output reaches the submission: stdin becomes
        # empty, stdout goes to stderr.
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(2, 1)
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        serve(line_reader(req_r), line_writer(rep_w))
        flush()
        os._exit(0)
    os.close(req_r)
    os.close(rep_w)
    spec = json.loads(sys.stdin.buffer.read())
    out = sys.stdout.buffer
    sys.stdout = sys.stderr

    def ended():
        os.close(req_w)
        for _ in range(100):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            import time

            time.sleep(0.001)
        else:
            # Alive but no longer answering: it broke the channel.
            os.kill(pid, 9)
            return ("exit", "0")
        if os.WIFSIGNALED(status):
            return ("signal", str(os.WTERMSIG(status)))
        return ("exit", str(os.waitstatus_to_exitcode(status)))

    check(spec, Link(line_writer(req_w), line_reader(rep_r), ended), report_to(out))
    flush()
    os._exit(0)


def wasm_checker_main():
    """wasm: stdin carries the spec line then the runner's replies; "C " lines on stdout go
    to the runner, "R " lines are the report."""
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr
    spec = json.loads(inp.readline())

    def send(text):
        out.write(b"C " + text.encode() + b"\n")
        out.flush()

    # The host reports how the runner instance ended; "ended" is all the checker can say.
    check(spec, Link(send, lambda: inp.readline().decode(), lambda: ("ended", "")), report_to(out))
    flush()
    os._exit(0)


def wasm_runner_main():
    """wasm: requests on stdin, replies on stdout; the submission gets an empty stdin and its
    prints go to stderr."""
    import io

    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdin = io.StringIO("")
    sys.stdout = sys.stderr

    def send(text):
        out.write(text.encode() + b"\n")
        out.flush()

    serve(lambda: inp.readline().decode(), send)
    flush()
    os._exit(0)


if __name__ == "__main__":
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role == "fork":
        fork_main()
    elif role == "checker":
        wasm_checker_main()
    elif role == "runner":
        wasm_runner_main()
    else:
        raise SystemExit("usage: check.py fork|checker|runner")
