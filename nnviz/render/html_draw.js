// nnviz interactive view. Python (nnviz/render/htmlview.py) precomputed every DOT fragment:
// a node statement per op, a cluster and collapsed pieces per module, an edge statement per
// edge. This script only picks the fragments for the current expansion state, joins them into
// one DOT source and lays it out with Graphviz (wasm, vendored above). Text from the model is
// shown with textContent only; the SVG comes from Graphviz, which escaped every label.
// This part draws; html_panels.js (inlined after it) holds the panels, input and start-up.

// Compiling the wasm starts first: it runs off the main thread while the view is parsed.
const loading = nnvizGraphviz.Graphviz.load();
const view = JSON.parse(document.getElementById("nnviz-view").textContent);
const $ = (id) => document.getElementById(id);
const mods = view.modules;
const kids = mods.map(() => []);
const roots = [];
mods.forEach((m, k) => (m.parent < 0 ? roots : kids[m.parent]).push(k));
const pieceOf = mods.map((m) => {
  const at = new Map();
  m.pieces.forEach((p, j) => p.members.forEach((i) => at.set(i, j)));
  return at;
});
const leafById = new Map(view.nodes.map((n, i) => [n.id, i]));
const moduleByPath = new Map(mods.map((m, k) => [m.path, k]));
const state = { expanded: new Set(view.expanded), selected: null, hits: [], hit: -1 };
const timings = { renders: 0 };
window.nnviz = { view, state, timings, render, reveal, search, select, expand };
let graphviz = null;
let svg = null;
let box = null; // the current viewBox {x, y, w, h}
let names = new Map(); // DOT name -> its <g> element
const layouts = new Map(); // DOT -> SVG of the last few drawings: collapsing back is instant

// --- DOT for the current expansion state --------------------------------------------------

// What stands for leaf i now: itself, or the piece of its outermost collapsed module.
function rep(i) {
  let cluster = -1;
  for (const m of view.nodes[i].chain) {
    if (!state.expanded.has(m)) {
      const j = pieceOf[m].get(i);
      return { name: `p${m}_${j}`, cluster, dot: mods[m].pieces[j].dot };
    }
    if (view.clusters) cluster = m;
  }
  return { name: `n${i}`, cluster, dot: view.nodes[i].dot };
}

function buildDot() {
  const reps = view.nodes.map((_, i) => rep(i));
  const inside = new Map();
  const used = new Set();
  const seen = new Set();
  for (const r of reps) {
    if (seen.has(r.name)) continue;
    seen.add(r.name);
    if (!inside.has(r.cluster)) inside.set(r.cluster, []);
    inside.get(r.cluster).push(`${r.name} ${r.dot}`);
    for (let m = r.cluster; m >= 0 && !used.has(m); m = mods[m].parent) used.add(m);
  }
  const emit = (m, out) => {
    out.push(...(inside.get(m) || []));
    for (const k of m < 0 ? roots : kids[m]) {
      if (!used.has(k)) continue;
      out.push(`subgraph cluster_${k} {`, `graph ${mods[k].dot}`);
      emit(k, out);
      out.push("}");
    }
    return out;
  };
  const lines = emit(-1, []);
  const edges = new Set();
  for (const [u, v, attrs] of view.edges) {
    const a = reps[u].name;
    const b = reps[v].name;
    if (a === b || edges.has(`${a} ${b}`)) continue;
    edges.add(`${a} ${b}`);
    lines.push(`${a} -> ${b} ${attrs}`);
  }
  return { dot: `${view.header}${lines.join("\n")}\n}\n`, count: seen.size };
}

// --- drawing ------------------------------------------------------------------------------

function render(focus) {
  const start = performance.now();
  const { dot, count } = buildDot();
  let text = layouts.get(dot);
  const layoutStart = performance.now();
  try {
    if (text === undefined) text = graphviz.dot(dot, "svg");
    timings.layout = performance.now() - layoutStart;
    layouts.delete(dot); // most recent last: the oldest is dropped first
    layouts.set(dot, text);
    if (layouts.size > 8) layouts.delete(layouts.keys().next().value);
  } catch (error) {
    $("status").textContent = "layout failed";
    console.error("nnviz: Graphviz failed", error);
    return;
  }
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const fresh = document.importNode(doc.documentElement, true);
  const [, , w, h] = (fresh.getAttribute("viewBox") || "0 0 100 100").split(/\s+/).map(Number);
  fresh.removeAttribute("width");
  fresh.removeAttribute("height");
  fresh.setAttribute("preserveAspectRatio", "xMidYMid meet");
  $("canvas").replaceChildren(fresh);
  const old = box;
  svg = fresh;
  names = new Map();
  for (const g of svg.querySelectorAll("g.node, g.cluster")) {
    const title = g.querySelector(":scope > title");
    if (title) names.set(title.textContent, g);
  }
  view.size = { w, h };
  if (focus && old && names.has(focus)) {
    box = { ...old };
    centre(focus);
  } else if (old) {
    fit();
  } else {
    home();
  }
  mark();
  const ms = performance.now() - start;
  timings.renders += 1;
  timings.last = ms;
  if (timings.first === undefined) timings.first = performance.now();
  $("status").textContent = `${count} nodes · ${Math.round(ms)} ms`;
  document.body.dataset.renders = String(timings.renders);
  saveHash();
  syncDepth();
}

function setBox(b) {
  box = b;
  svg.setAttribute("viewBox", `${b.x} ${b.y} ${b.w} ${b.h}`);
}

function fit() {
  setBox({ x: 0, y: 0, w: view.size.w, h: view.size.h });
}

// The first view: all of it if its text stays readable, else the top (a diff: its first
// change) at the smallest readable scale.
const READABLE = 1.3; // SVG points per screen pixel: 14pt titles stay ~11px high

function home() {
  const rect = svg.getBoundingClientRect();
  const readable = READABLE;
  if (Math.max(view.size.w / rect.width, view.size.h / rect.height) <= readable) return fit();
  const w = rect.width * readable;
  const h = rect.height * readable;
  setBox({ x: view.size.w / 2 - w / 2, y: 0, w, h });
  const first = view.changes && view.changes.length && itemFromKey(view.changes[0].target);
  if (first && names.has(shownName(first))) centre(shownName(first));
}

// Where a drawn element is, in the SVG's user units (the graph group is translated).
function bounds(name) {
  const g = names.get(name);
  const b = g.getBBox();
  const m = g.getCTM();
  const root = svg.getCTM();
  const inv = root.inverse().multiply(m);
  return { x: inv.a * b.x + inv.e, y: inv.d * b.y + inv.f, w: b.width * inv.a, h: b.height * inv.d };
}

// Centre a drawn element; with `zoom`, also zoom in to a readable scale (never so far that
// the element would not fit, never out when the reader zoomed in further).
function centre(name, zoom = false) {
  const b = bounds(name);
  let w = Math.max(box.w, b.w * 1.4);
  let h = Math.max(box.h, b.h * 1.4);
  if (zoom) {
    const rect = svg.getBoundingClientRect();
    const scale = Math.max(b.w * 1.2 / rect.width, b.h * 1.2 / rect.height, READABLE);
    const now = Math.max(box.w / rect.width, box.h / rect.height);
    w = rect.width * Math.min(scale, now);
    h = rect.height * Math.min(scale, now);
  }
  setBox({ x: b.x + b.w / 2 - w / 2, y: b.y + b.h / 2 - h / 2, w, h });
}

// --- what a DOT name, a path or an id means ---------------------------------------------

function itemOf(name) {
  if (name.startsWith("cluster_")) return { module: Number(name.slice(8)) };
  if (name.startsWith("p")) {
    const [m, j] = name.slice(1).split("_").map(Number);
    return { module: m, piece: j };
  }
  return { leaf: Number(name.slice(1)) };
}

// The DOT name that shows an item now (a collapsed ancestor's piece if it is hidden).
function shownName(item) {
  if (item.leaf !== undefined) return rep(item.leaf).name;
  const m = item.module;
  const first = mods[m].pieces[item.piece || 0].members[0];
  if (state.expanded.has(m) && view.clusters) {
    const r = rep(first);
    if (!r.name.startsWith("p") || !isWithin(Number(r.name.slice(1).split("_")[0]), m)) {
      return `cluster_${m}`;
    }
  }
  return rep(first).name;
}

function isWithin(m, ancestor) {
  for (let k = m; k >= 0; k = mods[k].parent) if (k === ancestor) return true;
  return false;
}

function itemFromKey(key) {
  if (leafById.has(key)) return { leaf: leafById.get(key) };
  if (moduleByPath.has(key)) return { module: moduleByPath.get(key) };
  for (let m = 0; m < mods.length; m++) {
    const j = mods[m].pieces.findIndex((p) => p.id === key);
    if (j >= 0) return { module: m, piece: j };
  }
  return null;
}

function keyOf(item) {
  if (item.leaf !== undefined) return view.nodes[item.leaf].id;
  return item.piece ? mods[item.module].pieces[item.piece].id : mods[item.module].path;
}

// Expand every module around an item so that it is drawn itself.
function reveal(item) {
  const chain = item.leaf !== undefined ? view.nodes[item.leaf].chain : ancestors(item.module);
  for (const m of chain) state.expanded.add(m);
}

function ancestors(m) {
  const out = [];
  for (let k = mods[m].parent; k >= 0; k = mods[k].parent) out.unshift(k);
  return out;
}

// --- selection, search, marks -----------------------------------------------------------

function select(item, move = true) {
  state.selected = item;
  showDetails(item);
  mark();
  const name = item && shownName(item);
  if (move && name && names.has(name)) centre(name, true);
  saveHash();
}

function mark() {
  for (const g of svg.querySelectorAll(".hit, .current, .selected")) {
    g.classList.remove("hit", "current", "selected");
  }
  state.hits.forEach((item, k) => {
    const g = names.get(shownName(item));
    if (g) g.classList.add(k === state.hit ? "current" : "hit");
  });
  const chosen = state.selected && names.get(shownName(state.selected));
  if (chosen) chosen.classList.add("selected");
}

function search(query) {
  const q = query.trim().toLowerCase();
  state.hits = [];
  state.hit = -1;
  if (q) {
    view.nodes.forEach((n, i) => {
      const cls = n.info.module ? n.info.module.class : "";
      if ([n.id, n.info.op, cls].some((t) => t.toLowerCase().includes(q))) state.hits.push({ leaf: i });
    });
    mods.forEach((m, k) => {
      if ([m.path, m.info.class].some((t) => t.toLowerCase().includes(q))) state.hits.push({ module: k });
    });
    // An exact id or path first: searching `layer3.1.conv2` jumps to that module, not a child.
    state.hits.sort((a, b) => (keyOf(b).toLowerCase() === q) - (keyOf(a).toLowerCase() === q));
  }
  $("hits").textContent = q ? `${state.hits.length} found` : "";
  if (state.hits.length) jump(0);
  else mark();
}

function jump(step) {
  if (!state.hits.length) return;
  state.hit = (state.hit + step + state.hits.length) % state.hits.length;
  const item = state.hits[state.hit];
  $("hits").textContent = `${state.hit + 1} of ${state.hits.length}`;
  reveal(item);
  render(shownName(item));
  select(item);
}

