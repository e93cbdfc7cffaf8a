// Home: the published tracks, filtered by subject and label (the form's query string).
"use strict";

(function () {
  const { api, el, setStatus } = window.CO;
  if (!window.CO.learner) return;
  const query = new URLSearchParams(location.search);
  const subject = document.getElementById("filter-subject");
  const label = document.getElementById("filter-label");
  subject.value = query.get("subject") || "";
  label.value = query.get("label") || "";
  const status = document.getElementById("tracks-status");
  const list = document.getElementById("tracks");

  async function load() {
    const params = new URLSearchParams();
    if (subject.value) params.set("subject", subject.value);
    if (label.value.trim()) params.set("label", label.value.trim());
    try {
      const { data } = await api("GET", "/v1/tracks?" + params.toString());
      list.replaceChildren(
        ...data.items.map((track) =>
          el(
            "li",
            { class: "card" },
            el("h2", {}, el("a", { href: "/learn/tracks/" + encodeURIComponent(track.slug), text: track.title })),
            el("p", { class: "meta", text: track.subject + (track.labels.length ? " · " + track.labels.join(", ") : "") }),
            track.description ? el("p", { text: track.description }) : null,
          ),
        ),
      );
      setStatus(status, data.items.length ? "" : "No track matches these filters.");
    } catch (error) {
      setStatus(status, error.message, "error");
    }
  }
  load();
})();
