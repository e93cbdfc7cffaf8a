// A track: its modules with outcomes, and each module's problems with difficulty and the
// learner's last result on it in this browser (kept by the problem page).
"use strict";

(function () {
  const { api, el, setStatus } = window.CO;
  if (!window.CO.learner) return;
  const root = document.getElementById("track");
  const status = document.getElementById("track-status");

  function lastResult(slug) {
    return localStorage.getItem("co.result." + window.CO.learner + "." + slug) || "";
  }

  function difficulty(level) {
    return el("span", { class: "difficulty d" + level, text: "Difficulty " + level + "/5" });
  }

  async function load() {
    try {
      const { data } = await api("GET", "/v1/tracks/" + encodeURIComponent(root.dataset.track));
      document.title = data.title + " · Curriculum Orchestrator";
      document.getElementById("track-title").textContent = data.title;
      document.getElementById("track-description").textContent = data.description;
      const modules = data.modules.map((module) =>
        el(
          "section",
          { class: "module", "aria-labelledby": "module-" + module.id },
          el("h2", { id: "module-" + module.id, text: module.position + ". " + module.title }),
          module.outcomes.length ? el("p", { class: "meta", text: "Outcomes: " + module.outcomes.join(", ") }) : null,
          el(
            "ul",
            { class: "problems" },
            module.problems.map((problem) => {
              const result = lastResult(problem.slug);
              return el(
                "li",
                {},
                el("a", { href: "/learn/problems/" + encodeURIComponent(problem.slug), text: problem.title }),
                " ",
                difficulty(problem.difficulty),
                " ",
                el("span", { class: "status-tag status-" + (result || "new"), text: result ? result.replace("_", " ") : "not tried" }),
                problem.topics.length ? el("span", { class: "meta", text: " · " + problem.topics.join(", ") }) : null,
              );
            }),
          ),
        ),
      );
      document.getElementById("modules").replaceChildren(...modules);
      setStatus(status, "");
    } catch (error) {
      setStatus(status, error.message, "error");
    }
  }
  load();
})();
