// Progress: mastery per topic (/v1/mastery), accuracy per module (the active path's
// /v1/study-paths/{id}/progress: modules keyed by slug in the track's order, each with completed,
// total and accuracy — the share of graded attempts that passed, null before the first — plus
// overall_accuracy and current_difficulty), difficulty over the path's tasks
// (/v1/study-tasks?path=…), reviews due per day for a week (/v1/review-queue).
// Without a path yet, the path's charts say how to get one instead of failing.
"use strict";

(function () {
  const { api, setStatus } = window.CO;
  const { bars, line, empty } = window.COCharts;
  if (!window.CO.learner) return;
  const status = document.getElementById("progress-status");
  const chart = (id) => document.getElementById(id);

  async function mastery() {
    const { data } = await api("GET", "/v1/mastery?key_type=topic");
    if (!data.items.length) return empty(chart("chart-mastery"), "No graded attempts yet: solve a problem to see your mastery.");
    bars(
      chart("chart-mastery"),
      "Mastery per topic (0–100)",
      data.items.map((row) => ({ label: row.key_id, value: row.score, text: row.score + (row.mastered ? " ✓" : "") })),
      100,
    );
  }

  async function accuracy(path) {
    if (!path) return empty(chart("chart-accuracy"), "Start a study path to see your accuracy per module.");
    const progress = (await api("GET", "/v1/study-paths/" + encodeURIComponent(path.id) + "/progress")).data;
    const summary = [];
    if (typeof progress.overall_accuracy === "number") summary.push("Overall accuracy " + Math.round(progress.overall_accuracy * 100) + "%");
    if (typeof progress.current_difficulty === "number") summary.push("current difficulty " + progress.current_difficulty + "/5");
    document.getElementById("progress-summary").textContent = summary.join(" · ");
    const modules = Object.entries(progress.modules || {});
    if (!modules.length) return empty(chart("chart-accuracy"), "This path has no modules.");
    bars(
      chart("chart-accuracy"),
      "Accuracy per module (percent of graded attempts passed; tasks completed of planned)",
      modules.map(([slug, m]) => ({
        label: slug,
        value: m.accuracy === null || m.accuracy === undefined ? 0 : m.accuracy * 100,
        text: (m.accuracy === null || m.accuracy === undefined ? "–" : Math.round(m.accuracy * 100) + "%") + " (" + m.completed + "/" + m.total + ")",
      })),
      100,
    );
  }

  async function difficulty(path) {
    if (!path) return empty(chart("chart-difficulty"), "Start a study path to see how difficulty moves.");
    const { data } = await api("GET", "/v1/study-tasks?path=" + encodeURIComponent(path.id));
    const done = data.items.filter((task) => ["passed", "failed", "submitted", "in_progress"].includes(task.status));
    const shown = done.length ? done : data.items;
    if (!shown.length) return empty(chart("chart-difficulty"), "No tasks yet.");
    line(chart("chart-difficulty"), "Difficulty of your tasks in order (1–5)", shown.map((task) => ({ label: "#" + task.position, value: task.difficulty })), 5);
  }

  async function reviews() {
    const { data } = await api("GET", "/v1/review-queue");
    const days = [];
    const start = new Date();
    start.setHours(0, 0, 0, 0);
    for (let i = 0; i < 7; i++) {
      const day = new Date(start.getTime() + i * 86400000);
      days.push({ day, label: i === 0 ? "today" : day.toLocaleDateString(undefined, { weekday: "short", day: "numeric" }), value: 0 });
    }
    for (const item of data.items) {
      const due = new Date(item.next_due_at);
      const index = due < start ? 0 : Math.floor((due - start) / 86400000);
      if (index < 7) days[index].value += 1;
    }
    const max = Math.max(1, ...days.map((d) => d.value));
    bars(chart("chart-reviews"), "Reviews due per day", days.map((d) => ({ label: d.label, value: d.value, text: String(d.value) })), max);
  }

  async function load() {
    try {
      const path = (await api("GET", "/v1/study-paths/active")).data.path;
      await Promise.all([mastery(), accuracy(path), difficulty(path), reviews()]);
      setStatus(status, "");
      document.body.dataset.loaded = "true";
    } catch (error) {
      setStatus(status, error.message, "error");
    }
  }
  load();
})();
