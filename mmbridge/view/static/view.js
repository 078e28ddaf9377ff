// mmbridge view: the runs list, one run (summary and sample browser), two runs compared.
// Hash routes: #/  #/run/KEY  #/compare/A/B (keys URI-encoded). Everything comes from /api/*.
"use strict";

const main = document.getElementById("main");
const POLL_MS = 3000;
let timer = null;

function esc(text) {
  const div = document.createElement("div");
  div.textContent = text == null ? "" : String(text);
  return div.innerHTML;
}
const num = (v, d = 3) => (v == null ? "-" : Number(v).toFixed(d));
const money = (v) => (v == null ? "-" : "$" + Number(v).toFixed(4));
const ms = (v) => (v == null ? "-" : (v * 1000).toFixed(1) + " ms");

async function api(path) {
  const response = await fetch(path);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// Every navigation (a hash change, a tab, a refresh) gets a number; a page still waiting for an older
// one's answers drops them, or a slow answer would draw the page the user has already left.
let shown = 0;
class Stale extends Error {}

async function apiFor(view, path) {
  const body = await api(path);
  if (view !== shown) throw new Stale();
  return body;
}

function poll(again) {
  clearTimeout(timer);
  document.getElementById("live").textContent = again ? "running: refreshing every 3 s" : "";
  if (again) timer = setTimeout(route, POLL_MS);
}

// -- the runs list --------------------------------------------------------------------------------

function headline(card) {
  const parts = [];
  for (const [name, p] of Object.entries(card.headline)) {
    const tasks = Object.entries(p.tasks).map(([task, m]) =>
      m.status ? `${task}: ${m.status}` :
      `${task} ${m.metric} ${num(m.value)} <span class="ci">[${num(m.ci95[0])}, ${num(m.ci95[1])}]</span>`);
    const errors = p.errors ? ` <span class="bad">${p.errors} errors</span>` : "";
    parts.push(`<div><b>${esc(name)}</b>: ${tasks.join("; ")}; ${money(p.cost_usd)}${errors}</div>`);
  }
  return parts.join("") || '<span class="muted">no summary yet</span>';
}

function status(card) {
  if (card.running) return `<span class="good">running</span> ${card.rows} of ${card.expected_rows} rows`;
  if (card.rows < card.expected_rows) return `<span class="bad">stopped</span> ${card.rows} of ${card.expected_rows} rows`;
  if (!Object.keys(card.headline).length) return "all rows, no summary yet";
  return card.stale ? "rows newer than its summary" : "complete";
}

async function showRuns(view) {
  const data = await apiFor(view, "/api/runs");
  document.getElementById("root").textContent = data.root;
  if (!data.runs.length) {
    main.innerHTML = `<p>No runs under ${esc(data.root)}: <code>mmbridge eval ... --out DIR</code> writes one.</p>`;
    return poll(false);
  }
  const rows = data.runs.map((c) => `<tr data-run="${esc(c.key)}">
      <td><input type="checkbox" class="pick" value="${esc(c.key)}" data-modified="${c.modified}"></td>
      <td><a href="#/run/${encodeURIComponent(c.key)}">${esc(c.key === "." ? "(this folder)" : c.key)}</a>
        <div class="muted">${new Date(c.modified * 1000).toLocaleString()}</div></td>
      <td>${esc(c.dataset)}<div class="muted">${c.samples} samples; ${esc(c.tasks.join(", "))}</div></td>
      <td>${headline(c)}${c.problem ? `<div class="bad">${esc(c.problem)}</div>` : ""}</td>
      <td class="status">${status(c)}</td></tr>`).join("");
  main.innerHTML = `<h2>Runs <span class="muted">(${data.runs.length}, newest first)</span></h2>
    <button id="compare" disabled>Compare the two ticked runs</button>
    <table id="runs"><tr><th></th><th>run</th><th>dataset</th><th>providers: main metric [95% CI], cost</th><th>status</th></tr>${rows}</table>`;
  const button = document.getElementById("compare");
  // the older run first: differences read as "newer minus older"
  const picked = () => [...document.querySelectorAll(".pick:checked")]
    .sort((x, y) => x.dataset.modified - y.dataset.modified).map((b) => b.value);
  main.querySelectorAll(".pick").forEach((box) => box.addEventListener("change", () => {
    button.disabled = picked().length !== 2;
  }));
  button.addEventListener("click", () => {
    const [a, b] = picked();
    location.hash = `#/compare/${encodeURIComponent(a)}/${encodeURIComponent(b)}`;
  });
  poll(data.runs.some((c) => c.running));
}

// -- one run ---------------------------------------------------------------------------------------

const state = { key: null, tab: "summary", filter: {}, offset: 0, limit: 50 };

function select(name, values, label) {
  const options = values.map((v) => `<option value="${esc(v)}"${state.filter[name] === v ? " selected" : ""}>${esc(v)}</option>`);
  return `<label>${label} <select data-filter="${name}"><option value="">any</option>${options.join("")}</select></label>`;
}

function answerLine(name, a) {
  const said = a.error ? `error: ${esc(a.error)}` : esc(a.text);
  const facts = [a.score != null ? `score ${num(a.score, 2)}` : null, a.confidence != null ? `conf ${num(a.confidence, 2)}` : null,
    a.service_s != null && a.service_s !== a.latency_s ? `service ${ms(a.service_s)} of ${ms(a.latency_s)}` : ms(a.latency_s),
    a.cost_usd ? money(a.cost_usd) : null, a.cached ? "cached" : null].filter(Boolean).join(", ");
  return `<div class="answer outcome-${a.outcome}" data-provider="${esc(name)}" data-outcome="${a.outcome}">
    <span class="who">${esc(name)}</span> ${said} <span class="muted">(${a.outcome}; ${facts})</span></div>`;
}

function sampleCard(key, s) {
  const picture = s.picture ? `<img loading="lazy" alt="${esc(s.id)}" src="/api/picture?key=${encodeURIComponent(key)}&id=${encodeURIComponent(s.id)}">`
    : '<div class="nopic">no picture recorded</div>';
  const choices = s.choices ? ` <span class="muted">(${esc(s.choices.join(" / "))})</span>` : "";
  const tags = `<span class="tag">${esc(s.task)}</span>${s.type ? `<span class="tag">${esc(s.type)}</span>` : ""}${s.disagree ? '<span class="tag">disagreement</span>' : ""}`;
  const answers = Object.entries(s.answers).map(([n, a]) => answerLine(n, a)).join("");
  return `<div class="sample" data-sample="${esc(s.id)}">${picture}<div><div class="q">${esc(s.question || "(caption)")}${choices}${tags}</div>
    <div class="truth">truth: ${esc(s.truth)} <span class="muted">· ${esc(s.id)}</span></div>${answers}</div></div>`;
}

let samplesAsked = 0; // each page request's number: only the latest one's answer is shown

async function showSamples(info) {
  const asked = ++samplesAsked;
  const params = new URLSearchParams({ key: state.key, offset: state.offset, limit: state.limit });
  for (const [k, v] of Object.entries(state.filter)) if (v) params.set(k, v);
  const page = await api("/api/samples?" + params);
  // two filters changed quickly send two requests, and their answers can come back in either order
  if (asked !== samplesAsked || !document.getElementById("samples")) return;
  const end = Math.min(page.offset + page.items.length, page.total);
  document.getElementById("samples").innerHTML = `<div class="pager"><span id="count">${page.total} samples</span>
      <span class="muted">${page.total ? `showing ${page.offset + 1}–${end}` : ""}</span>
      <button id="prev"${page.offset ? "" : " disabled"}>previous</button><button id="next"${end < page.total ? "" : " disabled"}>next</button></div>
    ${page.items.map((s) => sampleCard(state.key, s)).join("")}`;
  document.getElementById("prev").onclick = () => { state.offset = Math.max(0, state.offset - state.limit); showSamples(info); };
  document.getElementById("next").onclick = () => { state.offset += state.limit; showSamples(info); };
}

async function showRun(key, view) {
  if (state.key !== key) Object.assign(state, { key, tab: "summary", filter: {}, offset: 0 });
  const info = await apiFor(view, "/api/run?key=" + encodeURIComponent(key));
  const problems = info.problems.length ? `<div class="problems" id="problems">${info.problems.map(esc).join("<br>")}</div>` : "";
  main.innerHTML = `<h2>${esc(key)} <span class="muted">${esc(info.dataset)}: ${info.samples} samples, ${info.rows} rows</span></h2>${problems}
    <div class="tabs"><button data-tab="summary">Summary</button><button data-tab="samples">Samples</button></div>
    <div id="tab"></div>`;
  main.querySelectorAll(".tabs button").forEach((b) => {
    b.classList.toggle("on", b.dataset.tab === state.tab);
    b.onclick = () => { state.tab = b.dataset.tab; navigate((view) => showRun(key, view)); };
  });
  const tab = document.getElementById("tab");
  if (state.tab === "summary") {
    tab.innerHTML = '<p class="muted">Summarizing…</p>';
    const made = await apiFor(view, "/api/summary?key=" + encodeURIComponent(key));
    const live = made.live && made.summary_html ? '<p class="muted" id="live-summary">Summary of the rows so far (the run has not written its own).</p>' : "";
    tab.innerHTML = live + (made.summary_html || '<p class="muted">No rows yet.</p>');
  } else {
    tab.innerHTML = `<div class="filters">${select("task", info.tasks, "task")}${select("type", info.types, "type")}
      ${select("provider", info.providers, "provider")}${select("outcome", info.outcomes, "outcome")}
      <label>search <input id="search" type="search" value="${esc(state.filter.q || "")}"></label></div><div id="samples"></div>`;
    tab.querySelectorAll("select").forEach((s) => s.addEventListener("change", () => {
      state.filter[s.dataset.filter] = s.value; state.offset = 0; showSamples(info);
    }));
    const search = document.getElementById("search");
    search.addEventListener("change", () => { state.filter.q = search.value; state.offset = 0; showSamples(info); });
    await showSamples(info);
  }
  poll(info.running && state.tab === "summary");
}

// -- two runs --------------------------------------------------------------------------------------

async function showCompare(a, b, view) {
  const data = await apiFor(view, `/api/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
  const pairs = data.pairs.map((p) => {
    const cls = p.p_value < 0.05 ? (p.diff > 0 ? "good" : "bad") : "";
    return `<tr><td>${esc(p.provider)}</td><td>${esc(p.task)}</td><td>${esc(p.metric)}</td><td>${p.n}</td>
      <td class="${cls}">${p.diff >= 0 ? "+" : ""}${num(p.diff)} <span class="ci">[${num(p.ci95[0])}, ${num(p.ci95[1])}]</span></td>
      <td>${num(p.p_value, 4)} <span class="muted">${esc(p.test)}</span></td></tr>`;
  }).join("");
  const counts = Object.entries(data.changed).map(([k, n]) => `${esc(k)}: ${n}`).join("; ") || "none";
  const changes = data.changes.map((c) => `<tr data-sample="${esc(c.sample_id)}"><td>${esc(c.sample_id)}</td><td>${esc(c.provider)}</td>
      <td>${esc(c.question)}</td><td class="outcome-${c.was}">${esc(c.answer_a)} (${c.was})</td><td class="outcome-${c.now}">${esc(c.answer_b)} (${c.now})</td></tr>`).join("");
  const note = data.same_samples ? "Both runs asked the same samples." : "The runs' samples differ: each comparison uses the samples both answered.";
  main.innerHTML = `<h2>${esc(b)} against ${esc(a)}</h2><p class="muted">${note} Differences are ${esc(b)} minus ${esc(a)}.</p>
    ${data.providers.length ? "" : "<p>The runs share no provider name.</p>"}
    <table id="pairs"><tr><th>provider</th><th>task</th><th>metric</th><th>samples</th><th>difference [95% CI]</th><th>p</th></tr>${pairs}</table>
    <h3>Samples whose outcome changed</h3><p id="changed">${counts}</p>
    <table id="changes"><tr><th>sample</th><th>provider</th><th>question</th><th>${esc(a)}</th><th>${esc(b)}</th></tr>${changes}</table>`;
  poll(false);
}

async function navigate(draw) {
  const view = ++shown;
  try {
    await draw(view);
  } catch (error) {
    if (view !== shown) return; // a newer navigation draws the page (Stale, or an older page's error)
    main.innerHTML = `<p class="bad" id="failure">${esc(error.message)}</p><p><a href="#/">all runs</a></p>`;
    poll(false);
  }
}

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  return navigate((view) => {
    if (parts[0] === "run" && parts[1]) return showRun(parts[1], view);
    if (parts[0] === "compare" && parts[2]) return showCompare(parts[1], parts[2], view);
    return showRuns(view);
  });
}

window.addEventListener("hashchange", () => { state.offset = 0; route(); });
route();
