// The NOC's live parts: the facility page refreshes its link loads, device health and
// open alarms in place (no reload) every few seconds, and every page's alarm count with
// it. The pages are whole without this script; it only keeps them current.
"use strict";

const EVERY_MS = 4000;

function setText(root, selector, text) {
  const el = root.querySelector(selector);
  if (el && el.textContent !== text) el.textContent = text;
}

function human(v, unit) {
  if (v === null || v === undefined) return "—";
  for (const [f, p] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (Math.abs(v) >= f) return `${(v / f).toPrecision(3).replace(/\.?0+$/, "")} ${p}${unit}`;
  }
  return `${Number(v.toPrecision(3))} ${unit}`;
}

function updateLinks(links) {
  for (const lk of links) {
    const row = document.querySelector(`#links tr[data-link="${CSS.escape(lk.name)}"]`);
    if (row) {
      row.className = `level-${lk.level}`;
      setText(row, '[data-col="label"]', lk.label);
      setText(row, '[data-col="a_to_b"]', human(lk.a_to_b_bps, "b/s"));
      setText(row, '[data-col="b_to_a"]', human(lk.b_to_a_bps, "b/s"));
    }
    const g = document.querySelector(`#noc-map g[data-link="${CSS.escape(lk.name)}"]`);
    if (g) {
      g.setAttribute("class", `link level-${lk.level}`);
      const label = g.querySelector("text");
      if (label) label.textContent = lk.label;
      const title = g.querySelector("title");
      if (title) title.textContent = `${lk.name}: ${lk.label}`;
    }
  }
}

function updateDevices(devices) {
  for (const d of devices) {
    const row = document.querySelector(`#devices tr[data-device="${CSS.escape(d.name)}"]`);
    if (!row) continue;
    row.className = d.healthy ? "healthy" : "unhealthy";
    setText(row, '[data-col="netconf"]', d.netconf);
    setText(row, '[data-col="snmp"]', d.snmp);
    setText(row, '[data-col="uptime"]', d.uptime);
  }
}

function updateAlarms(alarms) {
  const count = document.getElementById("alarm-count");
  if (count) {
    count.dataset.count = String(alarms.open);
    count.textContent = String(alarms.open);
    count.setAttribute("aria-label", `${alarms.open} open`);
  }
  setText(document, '#alarms-h [data-col="open"]', String(alarms.open));
  const box = document.getElementById("open-alarms");
  if (!box) return;
  const ids = alarms.list.map((a) => a.id).join(",");
  if (box.dataset.ids === ids) return;
  box.dataset.ids = ids;
  box.replaceChildren();
  if (!alarms.list.length) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = "No open alarms.";
    box.append(p);
    return;
  }
  const ul = document.createElement("ul");
  ul.className = "plain alarm-list";
  for (const a of alarms.list) {
    const li = document.createElement("li");
    li.dataset.alarm = String(a.id);
    li.dataset.kind = a.kind;
    const sev = document.createElement("span");
    sev.className = `sev sev-${a.severity}`;
    sev.textContent = a.severity;
    const kind = document.createElement("strong");
    kind.textContent = a.kind;
    const slices = a.slices.length ? ` — slices: ${a.slices.map((s) => s.name).join(", ")}` : "";
    li.append(sev, " ", kind, ` ${a.subject}${slices}`);
    ul.append(li);
  }
  box.append(ul);
}

function live() {
  const page = document.getElementById("facility");
  if (!page) return;
  const poll = async () => {
    try {
      const r = await fetch(page.dataset.stateUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!r.ok) return;  // signed out: stop; a reload shows why
      const s = await r.json();
      updateLinks(s.links);
      updateDevices(s.devices);
      updateAlarms(s.alarms);
      const asOf = document.querySelector("#as-of time");
      if (asOf) { asOf.dateTime = s.at; asOf.textContent = s.at.slice(0, 16).replace("T", " ") + " UTC"; }
    } catch (e) {
      // the server restarting: try again
    }
    window.setTimeout(poll, EVERY_MS);
  };
  window.setTimeout(poll, EVERY_MS);
}

document.addEventListener("DOMContentLoaded", live);
