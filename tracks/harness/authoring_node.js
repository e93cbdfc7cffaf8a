// Authoring harness (JavaScript): runs staff-authored reference solutions on given inputs.
// Run by tracks.authoring in a separate process with an empty environment; never for learners.
"use strict";

function runJob(job) {
  const result = { outputs: [], error: null };
  let fn;
  try {
    const entry = job.entrypoint;
    fn = new Function(`${job.reference}\nreturn (typeof ${entry} === "function") ? ${entry} : undefined;`)();
  } catch (err) {
    result.error = `reference does not load: ${err && err.name}: ${err && err.message}`;
    return result;
  }
  if (typeof fn !== "function") {
    result.error = `'${job.entrypoint}' is not defined in the reference solution`;
    return result;
  }
  for (const input of job.inputs) {
    try {
      const value = fn(...job.parameters.map((name) => input[name]));
      const text = JSON.stringify(value);
      result.outputs.push({ ok: true, value: text === undefined ? null : JSON.parse(text) });
    } catch (err) {
      result.outputs.push({ ok: false, error: `${err && err.name}: ${err && err.message}`.slice(0, 300) });
    }
  }
  return result;
}

let raw = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { raw += chunk; });
process.stdin.on("end", () => {
  const jobs = JSON.parse(raw);
  const out = {};
  for (const [key, job] of Object.entries(jobs)) out[key] = runJob(job);
  process.stdout.write(JSON.stringify(out));
});
