// The study path: start one on a track, see the next task and the plan, start or skip a task,
// and open it to solve (the problem page in task mode submits to the task).
"use strict";

(function () {
  const { api, el, setStatus } = window.CO;
  if (!window.CO.learner) return;
  const status = document.getElementById("path-status");
  const createForm = document.getElementById("path-create");
  const section = document.getElementById("path");

  function taskLink(task) {
    const title = task.problem.title || task.problem.slug || task.problem.id;
    if (!task.problem.slug) return el("span", { text: title });
    return el("a", { href: "/learn/problems/" + encodeURIComponent(task.problem.slug) + "?task=" + encodeURIComponent(task.id), text: title });
  }

  async function act(task, action) {
    try {
      await api("PATCH", "/v1/study-tasks/" + encodeURIComponent(task.id), { action });
      await load();
      setStatus(status, action === "start" ? "Started task #" + task.position + "." : "Skipped task #" + task.position + ".");
    } catch (error) {
      setStatus(status, error.message, "error");
    }
  }

  function actions(task) {
    const buttons = [];
    if (task.status === "pending") buttons.push(el("button", { type: "button", class: "secondary", text: "Start", "aria-label": "Start task " + task.position, on: { click: () => act(task, "start") } }));
    if (task.status === "pending" || task.status === "in_progress") {
      buttons.push(el("button", { type: "button", class: "secondary", text: "Skip", "aria-label": "Skip task " + task.position, on: { click: () => act(task, "skip") } }));
    }
    return buttons;
  }

  async function showCreate() {
    createForm.hidden = false;
    section.hidden = true;
    const { data } = await api("GET", "/v1/tracks");
    document.getElementById("path-track").replaceChildren(...data.items.map((track) => el("option", { value: track.slug, text: track.title })));
  }

  createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", "/v1/study-paths", { track: document.getElementById("path-track").value });
      await load();
      setStatus(status, "Your study path is ready.");
    } catch (error) {
      setStatus(status, error.message, "error");
    }
  });

  async function load() {
    try {
      const active = (await api("GET", "/v1/study-paths/active")).data;
      if (!active.path) {
        setStatus(status, active.reason || "You have no active study path yet.");
        await showCreate();
        return;
      }
      const path = active.path;
      createForm.hidden = true;
      section.hidden = false;
      document.getElementById("path-title").textContent = "Your path on " + path.track.title;
      document.getElementById("path-summary").textContent = "Status: " + path.status + " · started " + new Date(path.created_at).toLocaleDateString();
      const next = (await api("GET", "/v1/study-tasks/next")).data;
      document.getElementById("next-task").replaceChildren(
        next.task
          ? el("p", { id: "next-task-line" }, taskLink(next.task), " — difficulty " + next.task.difficulty + "/5, " + next.task.module + (next.task.reasons.length ? " · " + next.task.reasons.join("; ") : ""))
          : el("p", { text: next.reason }),
      );
      const tasks = (await api("GET", "/v1/study-tasks?path=" + encodeURIComponent(path.id))).data.items;
      document.querySelector("#plan tbody").replaceChildren(
        ...tasks.map((task) =>
          el(
            "tr",
            { "data-task": task.id, "data-status": task.status },
            el("td", { text: String(task.position) }),
            el("td", {}, taskLink(task)),
            el("td", { text: task.module }),
            el("td", { text: String(task.difficulty) }),
            el("td", { text: task.kind }),
            el("td", {}, el("span", { class: "status-tag status-" + task.status, text: task.status.replace("_", " ") })),
            el("td", {}, actions(task)),
          ),
        ),
      );
      setStatus(status, "");
    } catch (error) {
      setStatus(status, error.message, "error");
    }
  }
  load();
})();
