// A track: its modules with their outcomes (and the learner's mastery of each, /v1/mastery), and
// each module's problems with difficulty and the learner's status on it from the API
// (/v1/tracks/{id}/my-results: solved / attempted / not started, from every graded submit of
// theirs, on any device and through sessions or study tasks alike).
"use strict";

(function () {
  const { api, el, setStatus } = window.CO;
  if (!window.CO.learner) return;
  const root = document.getElementById("track");
  const status = document.getElementById("track-status");

  const STATUS_WORDS = { solved: "solved", attempted: "attempted", not_started: "not started" };

  function statusTag(result) {
    const status = result ? result.status : "not_started";
    return el("span", { class: "status-tag status-" + status, text: STATUS_WORDS[status] || status });
  }

  function attempts(result) {
    if (!result || !result.attempts) return null;
    const count = result.attempts + (result.attempts === 1 ? " attempt" : " attempts");
    return el("span", { class: "meta attempts", text: " · " + count + (result.status === "solved" ? "" : ", last " + result.last_verdict) });
  }

  function difficulty(level) {
    return el("span", { class: "difficulty d" + level, text: "Difficulty " + level + "/5" });
  }

  async function load() {
    try {
      const track = "/v1/tracks/" + encodeURIComponent(root.dataset.track);
      const [{ data }, mastery, mine] = await Promise.all([
        api("GET", track),
        api("GET", "/v1/mastery?key_type=outcome"),
        api("GET", track + "/my-results"),
      ]);
      const results = new Map(mine.data.problems.map((row) => [row.slug, row]));
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
              const result = results.get(problem.slug);
              return el(
                "li",
                {},
                el("a", { href: "/learn/problems/" + encodeURIComponent(problem.slug), text: problem.title }),
                " ",
                difficulty(problem.difficulty),
                " ",
                statusTag(result),
                attempts(result),
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
