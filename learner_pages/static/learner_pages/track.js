// A track: its modules with their outcomes (and the learner's mastery of each, /v1/mastery), and
// each module's problems with difficulty and the learner's last result on it in this browser
// (kept by the problem page: the API has no per-problem status list yet).
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
      const [{ data }, mastery] = await Promise.all([
        api("GET", "/v1/tracks/" + encodeURIComponent(root.dataset.track)),
        api("GET", "/v1/mastery?key_type=outcome"),
      ]);
      const outcomeScores = new Map(mastery.data.items.map((row) => [row.key_id, row.score]));
      const outcome = (name) => (outcomeScores.has(name) ? name + " (mastery " + outcomeScores.get(name) + "/100)" : name);
      document.title = data.title + " · Curriculum Orchestrator";
      document.getElementById("track-title").textContent = data.title;
      document.getElementById("track-description").textContent = data.description;
      const modules = data.modules.map((module, index) =>
        el(
          "section",
          { class: "module", "aria-labelledby": "module-" + module.id },
          el("h2", { id: "module-" + module.id, text: index + 1 + ". " + module.title }),
          module.outcomes.length ? el("p", { class: "meta", text: "Outcomes: " + module.outcomes.map(outcome).join(", ") }) : null,
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
