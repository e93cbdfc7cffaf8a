// The review queue: due and upcoming reviews, soonest first, a page at a time.
"use strict";

(function () {
  const { api, el, setStatus } = window.CO;
  if (!window.CO.learner) return;
  const status = document.getElementById("reviews-status");
  const table = document.getElementById("reviews");
  const more = document.getElementById("reviews-more");
  const REASONS = { fail: "failed", slow: "slow", "heavy-hint": "many hints", "mock-gap": "missed in a mock" };
  let next = null;

  async function load(url) {
    try {
      const { data } = await api("GET", url);
      const rows = data.items.map((item) =>
        el(
          "tr",
          {},
          el("td", {}, el("a", { href: "/learn/problems/" + encodeURIComponent(item.problem.slug), text: item.problem.title })),
          el("td", { text: REASONS[item.reason] || item.reason }),
          el("td", { text: item.due ? "due now" : new Date(item.next_due_at).toLocaleString() }),
          el("td", { text: item.interval_days + " d" }),
        ),
      );
      table.querySelector("tbody").append(...rows);
      table.hidden = !table.querySelector("tbody").children.length;
      setStatus(status, table.hidden ? "Nothing to review: problems you fail, solve slowly or need many hints for come back here." : "");
      next = data.next;
      more.hidden = !next;
    } catch (error) {
      setStatus(status, error.message, "error");
    }
  }
  more.addEventListener("click", () => next && load(next));
  load("/v1/review-queue");
})();
