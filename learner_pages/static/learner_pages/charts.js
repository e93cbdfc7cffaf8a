// Small SVG charts drawn from data (no library): horizontal bars and a line. Every chart is an
// <svg role="img"> with a title, plus a visually hidden table of the same figures for screen readers.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const { el } = window.CO;

  function svg(tag, attributes, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function table(caption, rows, headers) {
    return el(
      "table",
      { class: "visually-hidden" },
      el("caption", { text: caption }),
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows.map((row) => el("tr", {}, row.map((cell) => el("td", { text: String(cell) }))))),
    );
  }

  // rows: [{label, value, text}] with value in 0..max.
  function bars(container, caption, rows, max) {
    const rowHeight = 26;
    const width = 320;
    const labelWidth = 120;
    const chart = svg("svg", { viewBox: "0 0 " + width + " " + (rows.length * rowHeight + 4), role: "img", "aria-label": caption, class: "bars" });
    chart.append(svg("title", {}, caption));
    rows.forEach((row, index) => {
      const y = index * rowHeight + 2;
      // A zero still gets a sliver, so an empty bar reads as "0", not as a missing one.
      const length = Math.max(2, max > 0 ? Math.min(1, Math.max(0, row.value / max)) * (width - labelWidth - 50) : 0);
      chart.append(svg("text", { x: 0, y: y + 16, class: "label" }, row.label.length > 16 ? row.label.slice(0, 15) + "…" : row.label));
      chart.append(svg("rect", { x: labelWidth, y: y + 4, width: length, height: rowHeight - 10, rx: 3, class: "bar" }));
      chart.append(svg("text", { x: labelWidth + length + 6, y: y + 16, class: "value" }, row.text));
    });
    container.replaceChildren(chart, table(caption, rows.map((r) => [r.label, r.text]), ["Item", "Value"]));
  }

  // points: [{label, value}] in order; a line over 0..max.
  function line(container, caption, points, max) {
    const width = 320;
    const height = 140;
    const pad = 24;
    const chart = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": caption, class: "line" });
    chart.append(svg("title", {}, caption));
    for (let level = 0; level <= max; level++) {
      const y = height - pad - (level / max) * (height - 2 * pad);
      chart.append(svg("line", { x1: pad, x2: width - 4, y1: y, y2: y, class: "grid" }));
      chart.append(svg("text", { x: 2, y: y + 4, class: "label" }, String(level)));
    }
    const step = points.length > 1 ? (width - pad - 10) / (points.length - 1) : 0;
    const coords = points.map((p, i) => [pad + 4 + i * step, height - pad - (p.value / max) * (height - 2 * pad)]);
    if (coords.length) chart.append(svg("polyline", { points: coords.map((c) => c.join(",")).join(" "), class: "series" }));
    coords.forEach((c) => chart.append(svg("circle", { cx: c[0], cy: c[1], r: 3, class: "point" })));
    container.replaceChildren(chart, table(caption, points.map((p) => [p.label, p.value]), ["Task", "Difficulty"]));
  }

  function empty(container, text) {
    container.replaceChildren(el("p", { class: "meta empty", text }));
  }

  window.COCharts = { bars, line, empty };
})();
