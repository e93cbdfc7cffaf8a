// A problem: the sanitized statement, visible examples, the answer (CodeMirror for code, steps
// and an expression with a live preview for math, text against rubric dimensions for systems
// design), Run and Submit through the public API (202 → polling), and hints streamed live from
// the tutor's SSE stream. With ?task=<id> it is a study task: Submit and hints go to the task.
"use strict";

(function () {
  const { api, el, setStatus, json } = window.CO;
  const learner = window.CO.learner;
  if (!learner) return;
  const root = document.getElementById("problem");
  const slug = root.dataset.problem;
  const taskId = new URLSearchParams(location.search).get("task");
  const status = document.getElementById("problem-status");
  const resultsStatus = document.getElementById("results-status");
  const resultsBody = document.getElementById("results-body");
  const runButton = document.getElementById("run");
  const submitButton = document.getElementById("submit");
  const POLL_MS = 500;
  let problem = null;
  let editor = null;
  let busy = false;
  let lastResult = null;

  const storageKey = (language) => "co.code." + learner + "." + slug + "." + language;
  const sessionKey = "co.session." + learner + "." + slug;
  const language = () => document.getElementById("language").value;

  // --- loading ------------------------------------------------------------------------------

  async function load() {
    try {
      problem = (await api("GET", "/v1/problems/" + encodeURIComponent(slug))).data;
    } catch (error) {
      setStatus(status, error.message, "error");
      return;
    }
    document.title = problem.title + " · Curriculum Orchestrator";
    document.getElementById("problem-title").textContent = problem.title;
    document.getElementById("problem-meta").textContent =
      "Difficulty " + problem.difficulty + "/5 · " + problem.subject + (problem.topics.length ? " · " + problem.topics.join(", ") : "");
    if (problem.track) {
      const link = document.getElementById("problem-track");
      link.textContent = problem.track.title;
      link.href = "/learn/tracks/" + encodeURIComponent(problem.track.slug);
    }
    // Rendered from Markdown and sanitized by the server (nh3): the one HTML the page inserts.
    document.getElementById("statement").innerHTML = problem.statement_html;
    showExamples();
    showHintButtons();
    if (problem.subject === "coding") setUpCoding();
    else if (problem.subject === "math") setUpMath();
    else setUpSystems();
    if (taskId) await showTask();
    setStatus(status, "");
  }

  function showExamples() {
    if (!problem.visible_tests.length) return;
    document.getElementById("examples-section").hidden = false;
    document
      .querySelector("#examples tbody")
      .replaceChildren(...problem.visible_tests.map((test) => el("tr", {}, el("td", {}, el("code", { text: json(test.input) })), el("td", {}, el("code", { text: json(test.expected) })))));
  }

  async function showTask() {
    const banner = document.getElementById("task-banner");
    try {
      const task = (await api("GET", "/v1/study-tasks/" + encodeURIComponent(taskId))).data;
      banner.replaceChildren("Study task #" + task.position + " (" + task.kind + ", " + task.status.replace("_", " ") + "). ", el("a", { href: "/learn/study-path", text: "Back to the study path" }));
    } catch (error) {
      banner.textContent = error.message;
      banner.classList.add("error");
    }
    banner.hidden = false;
  }

  // --- coding ---------------------------------------------------------------------------------

  function setUpCoding() {
    document.getElementById("coding-answer").hidden = false;
    runButton.hidden = false;
    const select = document.getElementById("language");
    const names = Object.keys(problem.languages);
    select.replaceChildren(...names.map((name) => el("option", { value: name, text: name === "javascript" ? "JavaScript" : "Python" })));
    const preferred = localStorage.getItem("co.language." + learner);
    select.value = preferred && names.includes(preferred) ? preferred : names.includes("python") ? "python" : names[0];
    editor = window.COEditor.create(document.getElementById("editor"), {
      doc: codeFor(select.value),
      language: select.value,
      label: "Code editor",
      onChange: (text) => localStorage.setItem(storageKey(language()), text),
      keys: { run: () => grade("run"), submit: () => grade("submit") },
    });
    select.addEventListener("change", () => {
      localStorage.setItem("co.language." + learner, select.value);
      editor.setLanguage(select.value);
      editor.setValue(codeFor(select.value));
    });
    const custom = document.getElementById("custom-tests");
    const example = problem.visible_tests[0];
    if (example) custom.placeholder = json({ input: example.input, expected: example.expected });
    const savedTests = localStorage.getItem(storageKey("custom-tests"));
    if (savedTests !== null) custom.value = savedTests;
    if (custom.value.trim()) document.getElementById("custom-tests-box").open = true;
    custom.addEventListener("input", () => localStorage.setItem(storageKey("custom-tests"), custom.value));
    document.getElementById("reset-code").addEventListener("click", () => {
      editor.setValue(problem.languages[language()].starter_code);
    });
  }

  function codeFor(name) {
    const saved = localStorage.getItem(storageKey(name));
    return saved !== null ? saved : problem.languages[name].starter_code;
  }

  // --- math -----------------------------------------------------------------------------------

  function setUpMath() {
    document.getElementById("math-answer").hidden = false;
    const steps = document.getElementById("math-steps");
    const expression = document.getElementById("math-expression");
    if (problem.math) {
      document.getElementById("math-form").textContent =
        "Variables: " + problem.math.variables.join(", ") + " · required form: " + problem.math.form;
    }
    for (const [field, key] of [[steps, "steps"], [expression, "expression"]]) {
      const saved = localStorage.getItem(storageKey(key));
      if (saved !== null) field.value = saved;
      field.addEventListener("input", () => {
        localStorage.setItem(storageKey(key), field.value);
        preview();
      });
    }
    preview();
  }

  // The expression as it reads: x^2 as a superscript, * as ×; built from text nodes only.
  function preview() {
    const text = document.getElementById("math-expression").value;
    const out = document.getElementById("math-preview");
    const parts = [];
    const pattern = /\^(\([^()]*\)|[A-Za-z0-9.]+)/g;
    let last = 0;
    let match;
    while ((match = pattern.exec(text))) {
      parts.push(text.slice(last, match.index).replace(/\*/g, "×"));
      parts.push(el("sup", { text: match[1].replace(/^\((.*)\)$/, "$1") }));
      last = pattern.lastIndex;
    }
    parts.push(text.slice(last).replace(/\*/g, "×"));
    out.replaceChildren(...parts);
  }

  // --- systems --------------------------------------------------------------------------------

  function setUpSystems() {
    document.getElementById("systems-answer").hidden = false;
    const text = document.getElementById("systems-text");
    const saved = localStorage.getItem(storageKey("text"));
    if (saved !== null) text.value = saved;
    text.addEventListener("input", () => localStorage.setItem(storageKey("text"), text.value));
    if (problem.rubric) {
      document.getElementById("rubric").replaceChildren(
        el("h3", { text: "Graded on: " + problem.rubric.title }),
        el("ul", {}, problem.rubric.dimensions.map((d) => el("li", {}, el("strong", { text: d.name }), " (0–" + d.scale + "): " + d.desc))),
      );
    }
  }

  // --- Run and Submit -----------------------------------------------------------------------------

  // The learner's own tests: one JSON object {input, expected} per line; a mistake is reported
  // here, in words, before anything is sent.
  function customTests() {
    const lines = document.getElementById("custom-tests").value.split("\n").map((line) => line.trim()).filter(Boolean);
    return lines.map((line, index) => {
      let test;
      try {
        test = JSON.parse(line);
      } catch (error) {
        throw new Error("Your test " + (index + 1) + " is not valid JSON.");
      }
      if (!test || typeof test.input !== "object" || Array.isArray(test.input) || !("expected" in test)) {
        throw new Error('Your test ' + (index + 1) + ' needs an "input" object and an "expected" value.');
      }
      return { input: test.input, expected: test.expected };
    });
  }

  function payload(kind) {
    if (problem.subject === "coding") {
      const answer = { language: language(), code: editor.getValue() };
      if (kind === "run") {
        const tests = customTests();
        if (tests.length) answer.custom_tests = tests;
      }
      return answer;
    }
    if (problem.subject === "math") {
      const steps = document.getElementById("math-steps").value.split("\n").map((s) => s.trim()).filter(Boolean);
      return { steps, expression: document.getElementById("math-expression").value.trim() };
    }
    return { text: document.getElementById("systems-text").value };
  }

  async function session(fresh) {
    let id = fresh ? null : localStorage.getItem(sessionKey);
    if (!id) {
      const created = await api("POST", "/v1/sessions", { subject: problem.subject, mode: "practice", problem_id: slug });
      id = created.data.id;
      localStorage.setItem(sessionKey, id);
    }
    return id;
  }

  // A stored session may have ended or moved on: start a fresh one once and try again.
  async function withSession(call) {
    try {
      return await call(await session(false));
    } catch (error) {
      if ([404, 409].includes(error.status) && ["not_found", "session_not_active", "conflict", "mock_finished"].includes(error.code)) {
        return await call(await session(true));
      }
      throw error;
    }
  }

  async function grade(kind) {
    if (busy || !problem) return;
    busy = true;
    runButton.disabled = submitButton.disabled = true;
    setStatus(resultsStatus, kind === "run" ? "Running the visible tests…" : "Grading your answer…");
    resultsBody.replaceChildren();
    resultsStatus.classList.add("pending");
    try {
      const answer = payload(kind);
      let response;
      const key = { "Idempotency-Key": crypto.randomUUID() };
      if (taskId && kind === "submit") {
        response = await api("POST", "/v1/study-tasks/" + encodeURIComponent(taskId) + "/submit", answer, key);
      } else {
        response = await withSession((sessionId) =>
          api("POST", "/v1/submissions", { session_id: sessionId, problem_id: slug, subject: problem.subject, kind, payload: answer }, key),
        );
      }
      let result = response.data;
      while (response.status === 202) {
        setStatus(resultsStatus, "Still grading (" + result.status + ")…");
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        response = await api("GET", "/v1/submissions/" + encodeURIComponent(result.id));
        result = response.data;
      }
      lastResult = result;
      showResult(result);
    } catch (error) {
      setStatus(resultsStatus, error.message, "error");
    } finally {
      resultsStatus.classList.remove("pending");
      busy = false;
      runButton.disabled = submitButton.disabled = false;
    }
  }

  const OUTCOME_WORDS = {
    passed: "Passed",
    wrong_answer: "Wrong answer",
    runtime_error: "Runtime error",
    time_limit: "Time limit exceeded",
    memory_limit: "Memory limit exceeded",
    output_limit: "Output limit exceeded",
  };

  function showResult(result) {
    const what = result.kind === "run" ? "Run" : "Submission";
    setStatus(resultsStatus, what + ": " + result.status.replace("_", " ") + (result.exec_ms !== undefined ? " (" + result.exec_ms + " ms)" : ""));
    resultsStatus.className = "verdict " + result.status;
    const parts = [];
    if (result.error) parts.push(el("pre", { class: "error-box", role: "alert", text: (result.error.kind ? result.error.kind.replace("_", " ") + ": " : "") + result.error.message }));
    if (result.visible) {
      parts.push(el("h3", { text: "Visible tests: " + result.visible.passed + " / " + result.visible.total + " passed" }));
      parts.push(
        el(
          "table",
          { class: "data tests" },
          el("thead", {}, el("tr", {}, ["#", "Input", "Expected", "Output", "Outcome", "Time"].map((h) => el("th", { scope: "col", text: h })))),
          el(
            "tbody",
            {},
            result.visible.details.map((d) =>
              el(
                "tr",
                { class: "outcome-" + d.outcome },
                el("td", { text: d.index < problem.visible_tests.length ? String(d.index + 1) : "yours " + (d.index - problem.visible_tests.length + 1) }),
                el("td", {}, el("code", { text: json(d.input) })),
                el("td", {}, el("code", { text: json(d.expected) })),
                el("td", {}, el("code", { text: d.error ? d.error : json(d.actual) })),
                el("td", { class: "outcome", text: OUTCOME_WORDS[d.outcome] || d.outcome }),
                el("td", { text: d.time_ms + " ms" }),
              ),
            ),
          ),
        ),
      );
    }
    if (result.hidden) {
      parts.push(el("h3", { text: "Hidden tests: " + result.hidden.passed + " / " + result.hidden.total + " passed" }));
      if (result.hidden.categories.length) parts.push(el("p", { class: "categories", text: "Failed categories: " + result.hidden.categories.join(", ") }));
    }
    if (result.math) {
      const math = result.math;
      parts.push(el("h3", { text: "Your answer is " + (math.equivalent ? "equivalent" : "not equivalent") + (math.form_ok === false ? ", but not in the required form" : "") }));
      if (math.steps && math.steps.length) {
        parts.push(el("ol", { class: "steps" }, math.steps.map((s) => el("li", { class: s.ok ? "ok" : "bad" }, el("code", { text: s.expression }), " — " + (s.ok ? "follows" : s.reason || "does not follow")))));
      }
      if (math.message) parts.push(el("p", { text: math.message }));
    }
    if (result.rubric) {
      const rubric = result.rubric;
      parts.push(el("h3", { text: "Rubric: " + rubric.total + " / " + rubric.max_total }));
      parts.push(el("ul", {}, rubric.dimensions.map((d) => el("li", {}, el("strong", { text: d.name + ": " + d.score + " / " + d.max_score }), d.feedback ? " — " + d.feedback : ""))));
    }
    if (result.categories && result.categories.length) parts.push(el("p", { class: "categories", text: "Failed categories: " + result.categories.join(", ") }));
    if (result.remediation && result.remediation.length) {
      parts.push(el("h3", { text: "What to look at" }));
      parts.push(el("ul", { class: "remediation" }, result.remediation.map((r) => el("li", {}, el("strong", { text: r.category + ": " }), r.text))));
    }
    resultsBody.replaceChildren(...parts);
  }

  runButton.addEventListener("click", () => grade("run"));
  submitButton.addEventListener("click", () => grade("submit"));
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey) || event.defaultPrevented) return;
    event.preventDefault();
    grade(event.shiftKey || problem.subject !== "coding" ? "submit" : "run");
  });

  // --- hints (SSE) ----------------------------------------------------------------------------

  function showHintButtons() {
    const levels = problem.hint_levels;
    const box = document.getElementById("hint-buttons");
    if (!levels) {
      box.replaceChildren(el("p", { class: "meta", text: "This problem has no hints." }));
      return;
    }
    const names = ["a nudge", "an approach", "a near-solution"];
    const buttons = [];
    for (let level = 1; level <= levels; level++) {
      buttons.push(el("button", { type: "button", class: "secondary hint-button", "data-level": level, text: "Hint " + level + (names[level - 1] ? " — " + names[level - 1] : ""), on: { click: () => hint(level) } }));
    }
    box.replaceChildren(...buttons);
  }

  async function hint(level) {
    const output = document.getElementById("hint-output");
    const text = el("p", { class: "hint-text" });
    const state = el("p", { class: "meta", text: "Asking the tutor for hint " + level + "…" });
    const block = el("div", { class: "hint", "data-level": level }, el("h3", { text: "Hint " + level }), text, state);
    output.prepend(block);
    const code = problem.subject === "coding" ? editor.getValue() : "";
    const lang = problem.subject === "coding" ? language() : "";
    let started;
    try {
      if (taskId) {
        started = (await api("POST", "/v1/study-tasks/" + encodeURIComponent(taskId) + "/hint", { level, code, language: lang })).data;
      } else {
        const body = { problem_id: slug, hint_level: level, code, language: lang };
        if (lastResult && lastResult.visible) {
          body.last_eval = { status: lastResult.status, visible: { passed: lastResult.visible.passed, total: lastResult.visible.total } };
          if (lastResult.hidden) body.last_eval.hidden = lastResult.hidden;
        }
        started = (await withSession((sessionId) => api("POST", "/v1/tutor/messages", { ...body, session_id: sessionId }))).data;
      }
    } catch (error) {
      state.textContent = error.message;
      state.classList.add("error");
      return;
    }
    // The stream token in the query is single-use and short-lived; EventSource cannot send headers.
    const source = new EventSource("/v1/tutor/stream?token=" + encodeURIComponent(started.token));
    let pieces = 0;
    source.addEventListener("start", () => (state.textContent = "The tutor is answering…"));
    source.addEventListener("token", (event) => {
      pieces += 1;
      text.append(JSON.parse(event.data).text);
      block.dataset.pieces = String(pieces);
    });
    source.addEventListener("fallback", (event) => {
      text.textContent = "";
      state.textContent = JSON.parse(event.data).message;
    });
    source.addEventListener("done", () => {
      state.textContent = "";
      block.dataset.done = "true";
      source.close();
    });
    source.addEventListener("error", (event) => {
      let message = "The hint stream stopped.";
      if (event.data) {
        try {
          message = JSON.parse(event.data).message || message;
        } catch (error) {
          /* keep the default */
        }
      }
      if (block.dataset.done !== "true") {
        state.textContent = message;
        state.classList.add("error");
      }
      source.close();
    });
  }

  load();
})();
