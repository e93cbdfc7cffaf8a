"""Sandbox harness (Python): runs learner code INSIDE the sandbox, as the unprivileged uid.

It is not a security boundary — the learner's code runs in this same interpreter and can read or
patch anything here. The OS sandbox (namespaces, uid, rlimits) is the boundary, and the trusted
side treats every line this process writes as untrusted.

Protocol. argv[1] is the number of the results fd, the last argument the scratch dir; with
`--self-limit` in between (a pre-started sandbox, see warm.py) the job also carries the run's
{"rlimits": {address_space, cpu_seconds}}, applied before the learner's code is even compiled.
The job arrives on stdin as a header line `<a> <b>`, a JSON object of a bytes
{code, entrypoint, parameters, time_limit_ms, wall_limit_ms, output_limit_bytes} and b bytes of
the inputs, marshalled (format 4, which decodes faster than JSON); with a header of one
length the JSON object carries "inputs" itself. Once the job is read, stdin, stdout and stderr
are pointed at /dev/null. Events go to the results fd, one JSON line each:
  {"e":"ready"}    (started, before reading the job: see warm.py)
  {"e":"compiled"} | {"e":"syntax_error","error":...}
  {"e":"loaded"}   | {"e":"load_error","outcome":...,"error":...}   (module code failed; all tests)
  {"e":"result","i":k,"outcome":...,"time_ms":...,"value":<JSON>|"error":...}
  {"e":"done"}     (after the last test; then it waits to be killed. No figures: the trusted
                   side measures time and memory itself, from outside the sandbox)

Per test: a CPU-time timer (ITIMER_PROF) at the time limit (checked against the precise CPU clock,
which alone judges) and a wall-clock timer (ITIMER_REAL) at the wall limit raise an exception in
the learner's code; both re-fire every 50 ms if swallowed,
and a test that ran past either limit is `time_limit` even when it returned; it is the last test
run (the trusted side reports the rest as not run). Return values must
be JSON (NaN and Infinity are refused: runtime_error). print()/sys.stdout/sys.stderr count bytes
per test; more than the output limit ends the test as `output_limit`.
"""

import _signal as signal  # `signal` itself wraps the constants in enums, on every start-up
import builtins
import io
import marshal
import os
import sys
import time

try:  # the C accelerator alone: `import json` pulls in re, enum, collections on every start-up
    import _json

    class _DecodeContext:
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = float
        memo = {}

    _scan = _json.make_scanner(_DecodeContext())

    def _not_serializable(value):
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    def _dumps(value):
        encoder = _json.make_encoder({}, _not_serializable, _json.encode_basestring_ascii, None, ":", ",", False, False, False)
        return "".join(encoder(value, 0))

    def _loads(text):
        return _scan(text, 0)[0]

    _loads(_dumps({"check": [1, 2.5, "x", None, True]}))
except Exception:  # noqa: BLE001 - another Python: the json module it is
    import json

    def _dumps(value):
        return json.dumps(value, allow_nan=False, ensure_ascii=True, separators=(",", ":"))

    _loads = json.loads

LEARNER_FILE = "<learner>"
RE_FIRE_SECONDS = 0.05
KILLED_WITHIN_SECONDS = 10  # after `done`: the trusted side kills the sandbox long before this


class _TimeLimit(BaseException):
    pass


class _OutputLimit(BaseException):
    pass


class _State:
    armed = False
    timed_out = False
    cpu_deadline = 0.0  # process_time() at which the test's CPU limit is reached
    printed = 0
    flooded = False
    output_limit = 65536


def _on_timer(signum, frame):
    if not _State.armed:
        return
    if signum == signal.SIGPROF:
        # The CPU timer counts sampled ticks: on a loaded machine it fires at 80-90% of the limit
        # by the process's precise CPU clock. Only that clock judges: until it reaches the limit,
        # the timer is set again for what is left.
        left = _State.cpu_deadline - time.process_time()
        if left > 0:
            signal.setitimer(signal.ITIMER_PROF, max(left, 0.005), RE_FIRE_SECONDS)
            return
    _State.timed_out = True
    raise _TimeLimit


class _CountingOutput(io.TextIOBase):
    """stdout/stderr for learner code: counts what is written, keeps nothing."""

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        _State.printed += len(text.encode("utf-8", "replace"))
        if _State.printed > _State.output_limit:
            _State.flooded = True
            raise _OutputLimit
        return len(text)

    def isatty(self):
        return False


def _write_line(fd, text):
    data = text.encode("ascii") + b"\n"
    while data:
        written = os.write(fd, data)
        data = data[written:]


def _learner_line(exc):
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == LEARNER_FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _describe(exc):
    name = type(exc).__name__
    try:
        message = str(exc)
    except _TimeLimit:
        raise
    except BaseException:  # noqa: BLE001 - learner code may raise anything
        message = "<the exception message could not be printed>"
    text = f"{name}: {message}" if message else name
    text = text if len(text) <= 400 else text[:400] + "…"
    line = _learner_line(exc)
    return f"{text} (line {line})" if line else text


def _classify(exc):
    if isinstance(exc, _OutputLimit):
        return "output_limit", "output limit exceeded (printed too much)"
    if isinstance(exc, MemoryError):
        return "memory_limit", "memory limit exceeded"
    if isinstance(exc, RecursionError):
        line = _learner_line(exc)
        return "runtime_error", "RecursionError: maximum recursion depth exceeded" + (f" (line {line})" if line else "")
    return "runtime_error", _describe(exc)


def _timed(call, cpu_limit, wall_limit):
    """Run call() under the per-test limits: (outcome, payload, cpu_ms). payload is the value's
    JSON text when outcome is "ok", else an error message."""
    _State.timed_out = False
    _State.flooded = False
    _State.printed = 0
    cpu_start = time.process_time()
    wall_start = time.monotonic()
    _State.cpu_deadline = cpu_start + cpu_limit
    outcome, payload = "runtime_error", "the test did not run"
    try:
        try:
            _State.armed = True
            signal.setitimer(signal.ITIMER_PROF, cpu_limit, RE_FIRE_SECONDS)
            signal.setitimer(signal.ITIMER_REAL, wall_limit, RE_FIRE_SECONDS)
            try:
                value = call()
            except _TimeLimit:
                raise
            except BaseException as exc:  # noqa: BLE001 - learner code may raise anything
                outcome, payload = _classify(exc)
            else:
                try:
                    outcome, payload = "ok", _dumps(value)
                except _TimeLimit:
                    raise
                except MemoryError:
                    outcome, payload = "memory_limit", "memory limit exceeded"
                except RecursionError:
                    outcome, payload = "runtime_error", "the return value is nested too deeply"
                except ValueError as exc:
                    if "Out of range float" in str(exc):
                        outcome, payload = "runtime_error", "the return value contains NaN or Infinity, which JSON cannot hold"
                    else:
                        outcome, payload = "runtime_error", f"the return value is not JSON: {exc}"
                except BaseException as exc:  # noqa: BLE001 - learner code may raise anything
                    outcome, payload = "runtime_error", f"the return value is not JSON-serializable: {_describe(exc)}"
        finally:
            _State.armed = False
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _TimeLimit:
        _State.armed = False
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
    cpu = time.process_time() - cpu_start
    wall = time.monotonic() - wall_start
    if _State.timed_out or cpu > cpu_limit or wall > wall_limit:
        outcome, payload = "time_limit", "time limit exceeded"
    elif _State.flooded:
        outcome, payload = "output_limit", "output limit exceeded (printed too much)"
    elif outcome == "ok" and len(payload) > _State.output_limit:
        outcome, payload = "output_limit", f"the return value is larger than {_State.output_limit} bytes"
    return outcome, payload, int(cpu * 1000)


def _read_job():
    """The job from stdin: its JSON object, with the inputs under "inputs". Read to the lengths
    in the header, not to EOF (a stray copy of the writing end elsewhere must not keep a sandbox
    waiting)."""
    data = b""
    while b"\n" not in data:
        chunk = os.read(0, 65536)
        if not chunk:
            raise EOFError("no job")
        data += chunk
    header, _, data = data.partition(b"\n")
    sizes = [int(size) for size in header.split()]
    chunks, have, total = [data], len(data), sum(sizes)
    while have < total:
        chunk = os.read(0, min(1 << 20, total - have))
        if not chunk:
            raise EOFError("the job is cut short")
        chunks.append(chunk)
        have += len(chunk)
    data = b"".join(chunks)
    job = _loads(data[: sizes[0]].decode("utf-8"))
    if len(sizes) == 2:
        job["inputs"] = marshal.loads(data[sizes[0] : total])  # noqa: S302 - written by the trusted side
    return job


def _warm_up():
    """The interpreter's first compile() does one-time set-up: pay it before the job arrives
    (the fork helper pays it once, for every sandbox it forks)."""
    exec(compile("def _warm(a):\n    return [a, {'k': a}]\n_warm(1)\n", "<warm-up>", "exec", dont_inherit=True), {})  # noqa: S102


def main():
    results_fd, scratch = int(sys.argv[1]), sys.argv[-1]
    resource = None
    if "--self-limit" in sys.argv[2:-1]:  # pre-started: the job brings the run's rlimits
        import resource
    _warm_up()
    _write_line(results_fd, '{"e":"ready"}')  # started: a pre-started sandbox now waits for its job
    job = _read_job()
    if resource is not None:
        # Down to the run's limits before any learner code exists here; without CAP_SYS_RESOURCE
        # nothing in the sandbox can raise a hard limit again. A failure is a failed start.
        limits = job["rlimits"]
        if limits["address_space"] is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limits["address_space"], limits["address_space"]))
        resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_seconds"], limits["cpu_seconds"]))
    # The job is read: from here on stdin is empty and the learner's raw fd 1/2 go nowhere.
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    sys.stdout = _CountingOutput()
    sys.stderr = _CountingOutput()
    _State.output_limit = int(job["output_limit_bytes"])
    signal.signal(signal.SIGPROF, _on_timer)
    signal.signal(signal.SIGALRM, _on_timer)
    sys.setrecursionlimit(10000)
    try:  # noqa: SIM105 - contextlib costs start-up time
        os.chdir(scratch)
    except OSError:
        pass

    def emit(event):
        _write_line(results_fd, _dumps(event))

    try:
        code = compile(job["code"], LEARNER_FILE, "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f" (line {exc.lineno}" + (f", column {exc.offset})" if exc.offset else ")") if exc.lineno else ""
        emit({"e": "syntax_error", "error": f"{type(exc).__name__}: {exc.msg}{where}"})
        return
    except (ValueError, MemoryError, RecursionError, OverflowError) as exc:
        emit({"e": "syntax_error", "error": f"SyntaxError: the program cannot be compiled ({type(exc).__name__})"})
        return
    emit({"e": "compiled"})

    cpu_limit = job["time_limit_ms"] / 1000
    wall_limit = job["wall_limit_ms"] / 1000
    namespace = {"__name__": "__learner__", "__builtins__": builtins}
    outcome, payload, _ = _timed(lambda: exec(code, namespace), cpu_limit, wall_limit)  # noqa: S102 - this is the sandbox
    if outcome != "ok":
        emit({"e": "load_error", "outcome": outcome, "error": payload})
        return
    entrypoint = job["entrypoint"]
    function = namespace.get(entrypoint)
    if not callable(function):
        emit({"e": "load_error", "outcome": "runtime_error", "error": f"entrypoint '{entrypoint}' is not defined"})
        return
    emit({"e": "loaded"})

    parameters = job["parameters"]
    inputs = job.pop("inputs")
    harness_pid = os.getpid()
    for index in range(len(inputs)):
        case = inputs[index]
        inputs[index] = None
        arguments = [case[name] for name in parameters]
        del case
        outcome, payload, cpu_ms = _timed(lambda arguments=arguments: function(*arguments), cpu_limit, wall_limit)
        del arguments
        if os.getpid() != harness_pid:
            os._exit(0)  # a fork of the learner's came back through here: only the harness reports
        head = f'{{"e":"result","i":{index},"outcome":"{outcome}","time_ms":{cpu_ms},'
        if outcome == "ok":
            _write_line(results_fd, head + '"value":' + payload + "}")
        else:
            _write_line(results_fd, head + '"error":' + _dumps(payload) + "}")
        del payload
        if outcome == "time_limit":
            break  # the first test over its time limit ends the run
    emit({"e": "done"})
    # The trusted side has all it needs and kills this sandbox itself, after the verdict's path:
    # exiting now would tear the sandbox down (its memory, its namespaces) on a CPU the trusted
    # side is being woken on, and hold the verdict up.
    time.sleep(KILLED_WITHIN_SECONDS)


if __name__ == "__main__":
    try:
        main()
    except BaseException:  # noqa: BLE001 - the trusted side reports missing results
        os._exit(70)
    # Skip interpreter teardown: no atexit handlers, thread joins or finalizers of learner code.
    os._exit(0)
