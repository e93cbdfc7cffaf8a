// Sandbox harness (JavaScript): runs learner code INSIDE the sandbox, as the unprivileged uid.
//
// Not a security boundary: the learner's code shares this process and can patch anything here.
// The OS sandbox is the boundary, and the trusted side treats every line written here as
// untrusted. `vm` is used only to compile the code and for its execution watchdog (timeout).
//
// Protocol (same as harness_python.py): argv[2] is the results fd, argv[3] the scratch dir; the job
// arrives on stdin as its length, a newline and the JSON; once it is read, stdin and stdout are
// pointed at /dev/null; one JSON event per line on the results fd: ready (before reading the job) |
// compiled | syntax_error | loaded | load_error | result | done.
//
// Per test: the call runs under vm's watchdog with the wall limit (it terminates busy loops and
// Atomics.wait); a promise result is awaited up to the wall limit; CPU time is measured with
// process.cpuUsage() and a test over its time limit is `time_limit` even when it returned; it is
// the last test run (the trusted side reports the rest as not run).
// Return values must be JSON: NaN/Infinity, BigInt, cycles and the like are a runtime_error;
// `undefined` is null. console.* / process.stdout / process.stderr count bytes per test; past
// the output limit the test is `output_limit`.
"use strict";

const fs = require("fs");
const vm = require("vm");

const LEARNER_FILE = "<learner>";
const resultsFd = Number(process.argv[2]);
const scratchDir = process.argv[3];

const state = { printed: 0, flooded: false, outputLimit: 65536, cpuJudged: false };

function writeLine(text) {
  const data = Buffer.from(text + "\n", "utf8");
  let offset = 0;
  while (offset < data.length) offset += fs.writeSync(resultsFd, data, offset, data.length - offset);
}

function emit(event) {
  writeLine(JSON.stringify(event));
}

// `<length>\n<job>` from stdin: read to the length, not to EOF (a stray copy of the writing end
// elsewhere must not keep a sandbox waiting).
function readJob() {
  const buffer = Buffer.alloc(1 << 20);
  const chunks = [];
  let have = 0;
  let size = -1;
  while (size < 0 || have < size) {
    let n;
    try {
      n = fs.readSync(0, buffer, 0, size < 0 ? buffer.length : Math.min(buffer.length, size - have), null);
    } catch (err) {
      if (err.code === "EAGAIN") continue;
      throw err;
    }
    if (n === 0) throw new Error("the job is cut short");
    chunks.push(Buffer.from(buffer.subarray(0, n)));
    have += n;
    if (size < 0) {
      const data = Buffer.concat(chunks);
      const newline = data.indexOf(10);
      if (newline >= 0) {
        size = Number(data.subarray(0, newline).toString("latin1"));
        chunks.length = 0;
        chunks.push(data.subarray(newline + 1));
        have = data.length - newline - 1;
      }
    }
  }
  return Buffer.concat(chunks).subarray(0, size).toString("utf8");
}

// Counts what learner code prints; past the limit the test is output_limit (nothing is thrown:
// console swallows errors, and an exception per line would only make a flood slower).
function count(chunk, encoding) {
  if (state.flooded) return;
  const size = typeof chunk === "string" ? Buffer.byteLength(chunk, typeof encoding === "string" ? encoding : "utf8") : (chunk && chunk.length) || 0;
  state.printed += size;
  if (state.printed > state.outputLimit) state.flooded = true;
}

function countingStream(fd) {
  return {
    fd,
    isTTY: false,
    writable: true,
    write(chunk, encoding, callback) {
      count(chunk, encoding);
      const done = typeof encoding === "function" ? encoding : callback;
      if (typeof done === "function") process.nextTick(done);
      return true;
    },
    end() {},
    on() { return this; },
    once() { return this; },
    emit() { return false; },
    removeListener() { return this; },
  };
}

function learnerLine(err) {
  try {
    const stack = String(err && err.stack);
    const match = stack.match(/<learner>:(\d+)(?::\d+)?/);
    return match ? Number(match[1]) : null;
  } catch (_) {
    return null;
  }
}

function describe(err) {
  let text;
  try {
    if (err instanceof Error || (err && typeof err === "object" && "message" in err)) {
      const name = String(err.name || "Error");
      const message = String(err.message).split("\nRequire stack:")[0]; // not the harness's paths
      text = message ? `${name}: ${message}` : name;
    } else {
      text = `Uncaught ${typeof err === "string" ? JSON.stringify(err) : String(err)}`;
    }
  } catch (_) {
    text = "an exception that could not be printed";
  }
  if (text.length > 400) text = text.slice(0, 400) + "…";
  const line = learnerLine(err);
  return line ? `${text} (line ${line})` : text;
}

function classify(err) {
  if (err instanceof RangeError && /allocation failed|Invalid array length|Invalid typed array length|Array buffer/i.test(String(err.message))) {
    return ["memory_limit", "memory limit exceeded"];
  }
  return ["runtime_error", describe(err)];
}

function jsonReplacer(key, value) {
  if (typeof value === "number" && !Number.isFinite(value)) throw new TypeError("NaN or Infinity");
  return value;
}

function serialize(value) {
  try {
    const text = JSON.stringify(value, jsonReplacer);
    return ["ok", text === undefined ? "null" : text];
  } catch (err) {
    if (err instanceof RangeError && /call stack/i.test(String(err.message))) return ["runtime_error", "the return value is nested too deeply"];
    if (err instanceof TypeError && err.message === "NaN or Infinity") return ["runtime_error", "the return value contains NaN or Infinity, which JSON cannot hold"];
    return ["runtime_error", `the return value is not JSON-serializable: ${describe(err)}`];
  }
}

function isTimeout(err) {
  return err && err.code === "ERR_SCRIPT_EXECUTION_TIMEOUT";
}

const TIMED_OUT = Symbol("timed out");
const callScript = new vm.Script("globalThis.__coCall()", { filename: "harness" });

// Run fn under the limits: [outcome, payload, cpuMs]; payload is the JSON text when "ok".
async function timed(fn, cpuLimitMs, wallLimitMs) {
  state.printed = 0;
  state.flooded = false;
  const cpuStart = process.cpuUsage();
  const wallStart = process.hrtime.bigint();
  let outcome;
  let payload;
  // Synchronous code (a busy loop) is stopped soon after its time limit, not at the wall bound:
  // CPU and wall time are the same for it, and 25% slack keeps a lightly loaded machine fair. A
  // job that is `cpu_judged` (the re-check of a time limit) waits for the wall bound instead: on a
  // loaded machine a test's wall time runs ahead of its CPU time, and only the CPU time judges it.
  const syncLimitMs = state.cpuJudged ? wallLimitMs : Math.min(wallLimitMs, cpuLimitMs + Math.ceil(cpuLimitMs / 4));
  globalThis.__coCall = fn;
  try {
    let value = callScript.runInThisContext({ timeout: syncLimitMs, breakOnSigint: false });
    // `then` may be the learner's getter: looked up under the watchdog too.
    globalThis.__coCall = () => value !== null && (typeof value === "object" || typeof value === "function") && typeof value.then === "function";
    if (callScript.runInThisContext({ timeout: syncLimitMs, breakOnSigint: false })) {
      const left = Math.max(1, wallLimitMs - Number(process.hrtime.bigint() - wallStart) / 1e6);
      let timer;
      const expired = new Promise((resolve) => { timer = setTimeout(() => resolve(TIMED_OUT), left); });
      const settled = await Promise.race([Promise.resolve(value), expired]);
      clearTimeout(timer);
      if (settled === TIMED_OUT) throw TIMED_OUT;
      value = settled;
    }
    globalThis.__coCall = () => serialize(value);
    [outcome, payload] = callScript.runInThisContext({ timeout: syncLimitMs, breakOnSigint: false });
  } catch (err) {
    if (err === TIMED_OUT || isTimeout(err)) [outcome, payload] = ["time_limit", "time limit exceeded"];
    else {
      // Reading the learner's exception runs the learner's getters: under the watchdog too.
      globalThis.__coCall = () => classify(err);
      try {
        [outcome, payload] = callScript.runInThisContext({ timeout: syncLimitMs, breakOnSigint: false });
      } catch (again) {
        [outcome, payload] = isTimeout(again) ? ["time_limit", "time limit exceeded"] : ["runtime_error", "an exception that could not be printed"];
      }
    }
  }
  globalThis.__coCall = undefined;
  const cpu = process.cpuUsage(cpuStart);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const wallMs = Number(process.hrtime.bigint() - wallStart) / 1e6;
  if (outcome === "time_limit" || cpuMs > cpuLimitMs || wallMs > wallLimitMs) {
    [outcome, payload] = ["time_limit", "time limit exceeded"];
  } else if (state.flooded) {
    [outcome, payload] = ["output_limit", "output limit exceeded (printed too much)"];
  } else if (outcome === "ok" && Buffer.byteLength(payload, "utf8") > state.outputLimit) {
    [outcome, payload] = ["output_limit", `the return value is larger than ${state.outputLimit} bytes`];
  }
  return [outcome, payload, Math.floor(cpuMs)];
}

async function main() {
  emit({ e: "ready" }); // started: a pre-started sandbox now waits for its job
  const job = JSON.parse(readJob());
  // The job is read: stdin and stdout now point at /dev/null (close, then open takes the lowest fd).
  fs.closeSync(0);
  fs.openSync("/dev/null", "r");
  fs.closeSync(1);
  fs.openSync("/dev/null", "w");
  state.outputLimit = job.output_limit_bytes;
  state.cpuJudged = job.cpu_judged === true;
  const stdout = countingStream(1);
  const stderr = countingStream(2);
  Object.defineProperty(process, "stdout", { value: stdout, configurable: true, writable: true });
  Object.defineProperty(process, "stderr", { value: stderr, configurable: true, writable: true });
  globalThis.console = new console.Console({ stdout, stderr, ignoreErrors: false });
  process.on("uncaughtException", () => {});
  process.on("unhandledRejection", () => {});
  try {
    process.chdir(scratchDir);
  } catch (_) {
    // no scratch dir: stay where we are
  }

  let script;
  try {
    script = new vm.Script(job.code, { filename: LEARNER_FILE });
  } catch (err) {
    let where = "";
    const match = String(err && err.stack).match(/^<learner>:(\d+)\n([^\n]*)\n( *)\^/);
    if (match) where = ` (line ${match[1]}, column ${match[3].length + 1})`;
    else if (learnerLine(err)) where = ` (line ${learnerLine(err)})`;
    emit({ e: "syntax_error", error: `${(err && err.name) || "SyntaxError"}: ${err && err.message}${where}` });
    return;
  }
  emit({ e: "compiled" });

  globalThis.require = require;
  globalThis.module = { exports: {} };
  globalThis.exports = globalThis.module.exports;
  const cpuLimit = job.time_limit_ms;
  const wallLimit = job.wall_limit_ms;
  let [outcome, payload] = await timed(() => script.runInThisContext({ displayErrors: false }), cpuLimit, wallLimit);
  if (outcome !== "ok") {
    emit({ e: "load_error", outcome, error: payload });
    return;
  }
  const entrypoint = job.entrypoint; // an identifier, checked by the trusted side
  // The one contract for learner code and reference solutions alike (docs/coursepack-format.md):
  // a global function named like the entrypoint; else `module.exports.<entrypoint>` (or
  // `exports.<entrypoint>`); else `module.exports` itself when it is a function. Looked up under
  // the watchdog: the exports may be the program's getters.
  const lookup = `(() => {
    if (typeof ${entrypoint} === "function") return ${entrypoint};
    const __coExported = globalThis.module ? globalThis.module.exports : undefined;
    const __coNamed = __coExported !== null && __coExported !== undefined ? __coExported.${entrypoint} : undefined;
    if (typeof __coNamed === "function") return __coNamed;
    const __coEarly = globalThis.exports;
    if (__coEarly !== __coExported && __coEarly !== null && typeof __coEarly === "object" && typeof __coEarly.${entrypoint} === "function") return __coEarly.${entrypoint};
    return typeof __coExported === "function" ? __coExported : undefined;
  })()`;
  let fn;
  try {
    fn = new vm.Script(lookup).runInThisContext({ timeout: wallLimit });
  } catch (_) {
    fn = undefined;
  }
  if (typeof fn !== "function") {
    emit({ e: "load_error", outcome: "runtime_error", error: `entrypoint '${entrypoint}' is not defined` });
    return;
  }
  emit({ e: "loaded" });

  const parameters = job.parameters;
  const inputs = job.inputs;
  job.inputs = null;
  for (let index = 0; index < inputs.length; index++) {
    const args = parameters.map((name) => inputs[index][name]);
    inputs[index] = null;
    let cpuMs;
    [outcome, payload, cpuMs] = await timed(() => fn(...args), cpuLimit, wallLimit);
    const head = `{"e":"result","i":${index},"outcome":"${outcome}","time_ms":${cpuMs},`;
    writeLine(outcome === "ok" ? `${head}"value":${payload}}` : `${head}"error":${JSON.stringify(payload)}}`);
    if (outcome === "time_limit") break; // the first test over its time limit ends the run
  }
  emit({ e: "done" }); // no figures: the trusted side measures time and memory from outside
}

const exit = process.reallyExit.bind(process);
main().then(
  () => exit(0),
  () => exit(70),
);
