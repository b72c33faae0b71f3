// The portal's few scripts: the editor's rows, mode switch and topology preview; the
// slice page's live status; confirmations. Pages work without them (forms post to the
// server), they only make the pages quicker to use.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function confirmations() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (e) => {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  }
}

function modeSwitch() {
  const radios = document.querySelectorAll("input[name=mode]");
  const show = () => {
    const mode = document.querySelector("input[name=mode]:checked")?.value || "form";
    for (const panel of document.querySelectorAll(".panel[data-mode]")) {
      panel.hidden = panel.dataset.mode !== mode;
    }
  };
  radios.forEach((r) => r.addEventListener("change", show));
  show();
}

function nextIndex(container) {
  let top = -1;
  for (const row of container.querySelectorAll(".row[data-index]")) {
    top = Math.max(top, Number(row.dataset.index));
  }
  return top + 1;
}

function rows(addId, containerId, templateId, onChange) {
  const add = document.getElementById(addId);
  const container = document.getElementById(containerId);
  const template = document.getElementById(templateId);
  if (!add || !container || !template) return;
  add.addEventListener("click", () => {
    const i = nextIndex(container);
    const html = template.innerHTML.replaceAll("__i__", String(i));
    container.insertAdjacentHTML("beforeend", html);
    container.lastElementChild.querySelector("input")?.focus();
    onChange();
  });
  container.addEventListener("click", (e) => {
    const button = e.target.closest(".remove-row");
    if (!button) return;
    const row = button.closest(".row");
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    (next?.querySelector("input") || add).focus();
    onChange();
  });
}

function topology() {
  const nodes = [...document.querySelectorAll("#node-rows .node-row")]
    .map((row) => ({
      name: row.querySelector("input[name$='-name']")?.value.trim(),
      pop: row.querySelector("select[name$='-pop']")?.value,
      kind: row.querySelector("select[name$='-kind']")?.value,
    }))
    .filter((n) => n.name);
  const circuits = [...document.querySelectorAll("#circuit-rows .circuit-row")]
    .map((row) => ({
      name: row.querySelector("input[name$='-name']")?.value.trim(),
      ends: (row.querySelector("input[name$='-endpoints']")?.value || "")
        .split(/[\s,]+/).filter(Boolean),
    }))
    .filter((c) => c.name || c.ends.length);
  return { nodes, circuits };
}

function drawPreview() {
  const svg = document.getElementById("topology-preview");
  if (!svg) return;
  const { nodes, circuits } = topology();
  for (const el of [...svg.children]) if (el.tagName !== "title") el.remove();
  const w = 400, h = 260, r = Math.min(w, h) / 2 - 40;
  const at = new Map();
  nodes.forEach((n, i) => {
    const a = (2 * Math.PI * i) / Math.max(nodes.length, 1) - Math.PI / 2;
    at.set(n.name, nodes.length === 1 ? [w / 2, h / 2] : [w / 2 + r * Math.cos(a), h / 2 + r * Math.sin(a)]);
  });
  for (const c of circuits) {
    const pts = c.ends.map((e) => at.get(e));
    const missing = pts.some((p) => !p);
    const cls = "p-circuit" + (missing ? " p-broken" : "");
    const known = pts.filter(Boolean);
    if (known.length < 2) continue;
    if (known.length === 2) {
      const [[x1, y1], [x2, y2]] = known;
      svg.append(svgEl("line", { x1, y1, x2, y2, class: cls }));
      svg.append(svgEl("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, class: "p-label", "text-anchor": "middle" }, c.name));
    } else {  // multipoint: a hub in the middle
      const cx = known.reduce((s, p) => s + p[0], 0) / known.length;
      const cy = known.reduce((s, p) => s + p[1], 0) / known.length;
      for (const [x, y] of known) svg.append(svgEl("line", { x1: cx, y1: cy, x2: x, y2: y, class: cls }));
      svg.append(svgEl("circle", { cx, cy, r: 5, class: "p-hub" }));
      svg.append(svgEl("text", { x: cx, y: cy - 8, class: "p-label", "text-anchor": "middle" }, c.name));
    }
  }
  for (const n of nodes) {
    const [x, y] = at.get(n.name);
    const g = svgEl("g", { class: "p-node p-" + (n.kind || "router") });
    g.append(svgEl("circle", { cx: x, cy: y, r: 16 }));
    g.append(svgEl("text", { x, y: y + 30, "text-anchor": "middle" }, n.name + (n.pop ? " @" + n.pop : "")));
    svg.append(g);
  }
  if (!nodes.length) {
    svg.append(svgEl("text", { x: w / 2, y: h / 2, "text-anchor": "middle", class: "p-empty" }, "Add nodes to see the topology"));
  }
}

function editor() {
  const form = document.getElementById("editor");
  if (!form) return;
  modeSwitch();
  rows("add-node", "node-rows", "node-row-template", drawPreview);
  rows("add-circuit", "circuit-rows", "circuit-row-template", drawPreview);
  form.addEventListener("input", drawPreview);
  form.addEventListener("change", drawPreview);
  drawPreview();
  document.getElementById("error-summary")?.focus();
}

function liveStatus() {
  const slice = document.getElementById("slice");
  if (!slice) return;
  const done = new Set(["ended", "failed"]);
  if (done.has(slice.dataset.status)) return;
  const poll = async () => {
    try {
      const r = await fetch(slice.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!r.ok) return;  // signed out or gone: stop; a reload shows why
      const s = await r.json();
      if (s.status !== slice.dataset.status || String(s.changes) !== slice.dataset.changes || s.end !== slice.dataset.end) {
        window.location.reload();
        return;
      }
    } catch (e) {
      // the server restarting: try again
    }
    window.setTimeout(poll, 1500);
  };
  window.setTimeout(poll, 1500);
}

document.addEventListener("DOMContentLoaded", () => {
  confirmations();
  editor();
  liveStatus();
});
