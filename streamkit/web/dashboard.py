"""``GET /``: the dashboard, one self-contained page (no CDN, no build step).

It polls ``/api/status`` every 1.5 s and draws: a lag bar per partition, an events/s
sparkline per agent (inline SVG), the tables with a key search that calls
``/table/{name}/{key}`` (a looked-up key keeps refreshing), a preview of small tables,
and the dead-letter count, red when non-zero. Kept as a Python string so the package
needs no data files.
"""

DASHBOARD_HTML = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>streamkit · {{APP_ID}}</title>
<style>
:root { --bg:#f6f7f9; --card:#fff; --ink:#1d2330; --muted:#6b7280; --line:#e3e6eb;
        --accent:#2f6fde; --ok:#1f9d55; --bad:#d12c2c; --warn:#e08a00; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
       background:var(--bg); color:var(--ink); }
header { display:flex; align-items:center; gap:16px; padding:12px 20px;
         background:#17202f; color:#fff; }
header h1 { font-size:17px; margin:0; font-weight:600; }
header .pill { padding:2px 9px; border-radius:10px; font-size:12px; background:#394357; }
header .pill.ready { background:var(--ok); } header .pill.notready { background:var(--warn); }
header .pill.down { background:var(--bad); }
header .right { margin-left:auto; color:#c9d1de; font-size:12px; }
main { display:grid; grid-template-columns:repeat(auto-fit, minmax(420px, 1fr));
       gap:16px; padding:16px 20px; }
/* 1400 px and wider: the worker and the agents span the page, the partitions (topic
   names can be long) and the tables share the row below, so no column is cut */
@media (min-width:1400px) {
  main { grid-template-columns:minmax(0, 3fr) minmax(0, 2fr); }
  #overview, #agents-card { grid-column:1 / -1; }
}
section { background:var(--card); border:1px solid var(--line); border-radius:8px;
          padding:12px 14px; min-width:0; overflow-x:auto; }
section h2 { font-size:13px; text-transform:uppercase; letter-spacing:.04em;
             color:var(--muted); margin:0 0 10px; }
.stats { display:flex; flex-wrap:wrap; gap:18px; }
.stat b { display:block; font-size:22px; font-variant-numeric:tabular-nums; }
.stat span { color:var(--muted); font-size:12px; }
.stat.bad b { color:var(--bad); }
table { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; }
th, td { text-align:left; padding:4px 6px; border-bottom:1px solid var(--line);
         vertical-align:middle; }
th { color:var(--muted); font-weight:500; font-size:12px; }
td.num { text-align:right; }
.bar { position:relative; height:12px; background:#edf0f4; border-radius:3px;
       min-width:120px; overflow:hidden; }
.bar i { position:absolute; left:0; top:0; bottom:0; background:var(--accent); }
.bar.hot i { background:var(--warn); }
svg.spark { display:inline-block; vertical-align:middle; }
td.spark { white-space:nowrap; }
td.topics, td.topic { white-space:nowrap; }   /* a topic name on one line */
svg.spark polyline { fill:none; stroke:var(--accent); stroke-width:1.5; }
svg.spark polygon { fill:rgba(47,111,222,.12); stroke:none; }
.dlq.bad { color:var(--bad); font-weight:700; }
.tbl { border-top:1px solid var(--line); padding:8px 0; }
.tbl:first-of-type { border-top:0; }
.tbl h3 { margin:0 0 6px; font-size:14px; }
.tbl h3 small { color:var(--muted); font-weight:400; margin-left:6px; }
.search { display:flex; gap:6px; margin:6px 0; }
.search input { flex:1; padding:5px 8px; border:1px solid var(--line); border-radius:5px;
                font:inherit; }
.search button { padding:5px 12px; border:1px solid var(--accent); background:var(--accent);
                 color:#fff; border-radius:5px; font:inherit; cursor:pointer; }
.result { font-family:ui-monospace, SFMono-Regular, Menlo, monospace; font-size:13px;
          white-space:pre-wrap; word-break:break-all; background:#f3f5f8; padding:6px 8px;
          border-radius:5px; margin-top:4px; max-height:12em; overflow:auto; }
.result.missing { color:var(--bad); }
.preview { display:block; max-height:18em; overflow:auto; }
.preview td { font-family:ui-monospace, SFMono-Regular, Menlo, monospace; font-size:12px; }
.muted { color:var(--muted); }
</style>
</head>
<body>
<header>
  <h1>streamkit · <span id="app">{{APP_ID}}</span></h1>
  <span id="state" class="pill">connecting…</span>
  <span class="right" id="updated"></span>
</header>
<main>
  <section id="overview">
    <h2>Worker</h2>
    <div class="stats">
      <div class="stat"><b id="eps">–</b><span>events/s (agents)</span></div>
      <div class="stat"><b id="lag">–</b><span>total lag</span></div>
      <div class="stat" id="dlq-stat"><b id="dlq" class="dlq">–</b><span>dead letters</span></div>
      <div class="stat"><b id="late">–</b><span>late window events</span></div>
      <div class="stat"><b id="joindrops">–</b><span>join drops</span></div>
      <div class="stat"><b id="commits">–</b><span>commits</span></div>
      <div class="stat"><b id="uptime">–</b><span>uptime</span></div>
    </div>
  </section>
  <section id="agents-card">
    <h2>Agents</h2>
    <table><thead><tr><th>agent</th><th>topics</th><th>events/s (last 60 s)</th>
      <th class="num">events</th><th class="num">errors</th><th class="num">restarts</th>
    </tr></thead><tbody id="agents"></tbody></table>
  </section>
  <section id="partitions-card">
    <h2>Partitions</h2>
    <table><thead><tr><th>topic</th><th class="num">part.</th><th class="num">committed</th>
      <th class="num">end</th><th class="num">lag</th><th>lag</th></tr></thead>
      <tbody id="partitions"></tbody></table>
  </section>
  <section id="tables-card">
    <h2>Tables</h2>
    <div id="tables"></div>
  </section>
</main>
<script>
"use strict";
const REFRESH_MS = 1500, PREVIEW_MAX = 2000, PREVIEW_ROWS = 10;
const $ = (id) => document.getElementById(id);
const lookups = {};          // table name -> key text being watched
const fmt = (n) => (n === null || n === undefined) ? "–" :
  Number(n).toLocaleString("en-US", {maximumFractionDigits: 1});
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}
function duration(s) {
  s = Math.floor(s);
  const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
  return h ? `${h}h ${m}m` : m ? `${m}m ${sec}s` : `${sec}s`;
}
function sparkline(values, width = 120, height = 26) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark"); svg.setAttribute("width", width);
  svg.setAttribute("height", height); svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  if (!values.length) return svg;
  const max = Math.max(1, ...values), n = Math.max(values.length - 1, 1);
  const pts = values.map((v, i) =>
    `${(i / n * width).toFixed(1)},${(height - 1 - v / max * (height - 2)).toFixed(1)}`);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", pts.join(" "));
  const area = document.createElementNS(ns, "polygon");
  area.setAttribute("points", `0,${height} ${pts.join(" ")} ${width},${height}`);
  svg.append(area, line);
  return svg;
}
function renderAgents(agents) {
  const body = $("agents"); body.replaceChildren();
  if (!agents.length) body.append(el("tr", {}, el("td", {colspan: 6, class: "muted", text: "no agents"})));
  for (const a of agents) {
    const spark = el("td", {class: "spark"});
    spark.append(sparkline(a.history), el("span", {class: "muted", text: ` ${fmt(a.events_per_second)}/s`}));
    body.append(el("tr", {"data-agent": a.name},
      el("td", {text: "@" + a.name}), el("td", {class: "topics", text: a.topics.join(", "), title: a.topics.join(", ")}), spark,
      el("td", {class: "num", text: fmt(a.events_total)}),
      el("td", {class: "num" + (a.errors ? " dlq bad" : ""), text: fmt(a.errors)}),
      el("td", {class: "num", text: fmt(a.restarts)})));
  }
}
function renderPartitions(rows) {
  const body = $("partitions"); body.replaceChildren();
  if (!rows.length) body.append(el("tr", {}, el("td", {colspan: 6, class: "muted", text: "no partitions assigned"})));
  const max = Math.max(1, ...rows.map((r) => r.lag));
  for (const r of rows) {
    const bar = el("div", {class: "bar" + (r.lag > 0 && r.lag === max ? " hot" : "")});
    const fill = el("i", {}); fill.style.width = (r.lag / max * 100).toFixed(1) + "%";
    bar.append(fill);
    body.append(el("tr", {"data-tp": `${r.topic}/${r.partition}`},
      el("td", {class: "topic", text: r.topic}), el("td", {class: "num", text: r.partition}),
      el("td", {class: "num", text: fmt(r.committed)}), el("td", {class: "num", text: fmt(r.end)}),
      el("td", {class: "num lag", text: fmt(r.lag)}), el("td", {}, bar)));
  }
}
function isWindows(v) {
  return Array.isArray(v) && v.length > 0 && v.every((w) => w && "start" in w && "end" in w);
}
function when(t) {   // window bounds are epoch seconds
  const d = new Date(t * 1000);
  return isNaN(d) ? String(t) : d.toISOString().replace("T", " ").replace(/\.000Z$/, "Z");
}
function show(value, full) {
  if (isWindows(value)) {
    const line = (w) => `[${when(w.start)}, ${when(w.end)}) = ${show(w.value)}`;
    if (!full) return line(value[value.length - 1]) +
      (value.length > 1 ? `  (${value.length} windows)` : "");
    const shown = value.slice(-5), earlier = value.length - shown.length;
    return (earlier ? `… ${earlier} earlier window${earlier > 1 ? "s" : ""}\n` : "") +
      shown.map(line).join("\n");
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}
async function lookup(name) {
  const key = lookups[name], out = document.querySelector(`[data-result="${CSS.escape(name)}"]`);
  if (key === undefined || !out) return;
  try {
    const resp = await fetch(`/table/${encodeURIComponent(name)}/${encodeURIComponent(key)}`);
    const body = await resp.json();
    out.classList.toggle("missing", !resp.ok);
    out.textContent = !resp.ok ? body.error : isWindows(body.value) ?
      `${key} →\n${show(body.value, true)}` : `${key} → ${show(body.value)}`;
  } catch (e) { out.textContent = String(e); }
}
function tableCard(t) {
  const card = el("div", {class: "tbl", "data-table": t.name});
  const title = el("h3", {text: t.name});
  title.append(el("small", {class: "size", text: ""}));
  const input = el("input", {type: "search", placeholder: "key", "aria-label": `key in ${t.name}`});
  const button = el("button", {type: "submit", text: "Look up"});
  const form = el("form", {class: "search"}, input, button);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault(); lookups[t.name] = input.value; lookup(t.name);
  });
  const result = el("div", {class: "result", "data-result": t.name});
  result.style.display = "none";
  form.addEventListener("submit", () => { result.style.display = ""; });
  const preview = el("table", {class: "preview"});
  card.append(title, form, result, preview);
  return card;
}
async function renderTables(tables) {
  const box = $("tables");
  if (!tables.length) { box.replaceChildren(el("p", {class: "muted", text: "no tables"})); return; }
  const seen = new Set();
  for (const t of tables) {
    seen.add(t.name);
    let card = box.querySelector(`[data-table="${CSS.escape(t.name)}"]`);
    if (!card) { card = tableCard(t); box.append(card); }
    const kind = t.windowed ? `windowed ${t.window}` : (t.global ? "global" : "");
    card.querySelector(".size").textContent =
      `${fmt(t.size)}${t.size_exact ? "" : "≈"} keys${kind ? " · " + kind : ""}` +
      (t.late_events ? ` · ${fmt(t.late_events)} late` : "");
    // a windowed key lookup scans the table's windows: refresh it only while small
    if (!t.windowed || t.size <= PREVIEW_MAX) lookup(t.name);
    const preview = card.querySelector(".preview");
    if (t.size > PREVIEW_MAX) { preview.replaceChildren(); continue; }
    try {
      const resp = await fetch(`/table/${encodeURIComponent(t.name)}?limit=${PREVIEW_ROWS}`);
      const page = await resp.json();
      preview.replaceChildren(...(page.items || []).map((it) => el("tr", {},
        el("td", {text: show(it.key)}), el("td", {text: show(it.value)}))));
    } catch (e) { preview.replaceChildren(); }
  }
  for (const card of box.querySelectorAll("[data-table]"))
    if (!seen.has(card.dataset.table)) card.remove();
}
async function refresh() {
  try {
    const resp = await fetch("/api/status", {cache: "no-store"});
    const s = await resp.json();
    $("state").textContent = s.ready ? "ready" : "not ready";
    $("state").className = "pill " + (s.ready ? "ready" : "notready");
    // events the agents finished per second (fetched events include the app's own
    // repartition and forward topics, and pause while the agents catch up)
    $("eps").textContent = fmt(s.agents.reduce((sum, a) => sum + a.events_per_second, 0));
    $("lag").textContent = fmt(s.lag);
    $("dlq").textContent = fmt(s.dead_letters_total);
    $("dlq").classList.toggle("bad", s.dead_letters_total > 0);
    $("dlq-stat").classList.toggle("bad", s.dead_letters_total > 0);
    $("late").textContent = fmt(Object.values(s.late_events).reduce((a, b) => a + b, 0));
    $("joindrops").textContent = fmt(Object.values(s.join_drops || {}).reduce((a, b) => a + b, 0));
    $("commits").textContent = fmt(s.commits.count);
    $("uptime").textContent = duration(s.uptime);
    $("updated").textContent = `pid ${s.pid} · ${s.broker} · updated ${new Date().toLocaleTimeString()}`;
    renderAgents(s.agents);
    renderPartitions(s.partitions);
    await renderTables(s.tables);
  } catch (e) {
    $("state").textContent = "unreachable"; $("state").className = "pill down";
  }
}
async function loop() { await refresh(); setTimeout(loop, REFRESH_MS); }
loop();
</script>
</body>
</html>
"""
