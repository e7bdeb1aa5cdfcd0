// nnviz interactive view, part 2 (runs after html_draw.js in the same module): the side
// panels, the URL fragment, input handling and start-up. Text from the model goes in with
// textContent only.

// --- side panels --------------------------------------------------------------------------

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function facts(pairs) {
  const dl = el("dl");
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "") continue;
    dl.append(el("dt", k), el("dd", String(v)));
  }
  return dl;
}

function moduleFacts(info) {
  const pairs = [["class", info.class], ["params", info.params.toLocaleString("en")]];
  for (const [k, v] of info.hparams || []) pairs.push([k, v]);
  for (const [k, shape] of info.parameters || []) {
    const count = shape.reduce((a, b) => a * b, 1);
    pairs.push([k, `[${shape.join(", ")}] · ${count.toLocaleString("en")}`]);
  }
  return pairs;
}

// What a node or a module (all its calls) costs; nothing when traced without an input.
const costFacts = (info) => [
  ["compute", info.cost],
  ["activations", info.activations],
  ["not counted", info.uncounted],
];

function showDetails(item) {
  const box = $("details");
  box.replaceChildren(el("h2", "Details"));
  if (!item) return box.append(el("p", "Click a node for its details.", "hint"));
  if (item.leaf !== undefined) {
    const n = view.nodes[item.leaf];
    box.append(el("h3", n.id));
    const pairs = [["kind", n.info.kind]];
    if (n.info.module) pairs.push(...moduleFacts(n.info.module));
    else pairs.push(["op", n.info.op]);
    pairs.push(["source", n.info.source]);
    for (const [k, v] of n.info.args || []) pairs.push([`arg ${k}`, v]);
    for (const [src, spec, slots] of n.info.inputs || []) {
      pairs.push([slots ? `${slots} from ${src}` : `from ${src}`, spec]);
    }
    pairs.push(["output", n.info.output]);
    pairs.push(...costFacts(n.info));
    box.append(facts(pairs));
  } else {
    const m = mods[item.module];
    box.append(el("h3", m.path));
    const open = state.expanded.has(item.module);
    const ops = opsIn(item.module);
    box.append(facts([...moduleFacts(m.info), ["ops", ops], ...costFacts(m.info)]));
    const button = el("button", open ? "Collapse" : "Expand");
    button.addEventListener("click", () => toggle(item.module));
    box.append(button);
  }
  const change = (view.changes || []).find((c) => c.target === keyOf(item));
  if (change) {
    box.append(el("h2", change.status));
    for (const line of change.lines) box.append(el("div", line, "line"));
  }
}

const opsIn = (m) => mods[m].pieces.reduce((a, p) => a + p.members.length, 0);

// Expand a module, and on down while it only wraps one module (maxvit's blocks.0 holds just
// `layers`): one click always shows something new.
function expand(m) {
  state.expanded.add(m);
  while (kids[m].length === 1 && opsIn(kids[m][0]) === opsIn(m)) {
    m = kids[m][0];
    state.expanded.add(m);
  }
}

function toggle(m) {
  const focus = state.expanded.has(m) ? null : `cluster_${m}`;
  if (state.expanded.has(m)) state.expanded.delete(m);
  else expand(m);
  state.selected = { module: m };
  render(focus || `p${m}_0`);
  select(state.selected, false);
}

function legend() {
  const list = $("legend-list");
  const row = (swatch, text) => {
    const li = el("li");
    li.append(swatch, el("span", text));
    list.append(li);
  };
  const swatch = (fill, border, cls) => {
    const s = el("span", undefined, `swatch ${cls || ""}`);
    s.style.background = fill;
    s.style.borderColor = border;
    return s;
  };
  row(swatch("#eee", "#404040", "double"), "collapsed module: click to expand");
  row(swatch("#e8e8ee", "#9a9aa6"), "expanded module: click its title to collapse");
  for (const [status, [fill, border]] of Object.entries(view.statuses || {})) {
    row(swatch(fill, border), status);
  }
  if (view.statuses) row(swatch("#f7f7f7", "#b0b0b0"), "unchanged (context)");
  row(el("span", "⇢"), "edge label: the tensor shape (when traced with an input)");
}

function changelog() {
  if (!view.changes) return;
  $("changes").hidden = false;
  $("unchanged-toggle").hidden = false;
  const list = $("change-list");
  const colours = view.statuses || {};
  for (const change of view.changes) {
    const li = el("li");
    if (colours[change.status]) li.style.borderLeftColor = colours[change.status][1];
    const info = change.info ? ` (${change.info}, not drift)` : "";
    const a = el("a", `${change.status}: ${change.name || "(root)"}${info}`);
    if (change.info) li.classList.add("info");
    a.href = "#";
    a.addEventListener("click", (event) => {
      event.preventDefault();
      for (const other of list.children) other.classList.remove("current");
      li.classList.add("current");
      const item = itemFromKey(change.target);
      if (!item) return;
      reveal(item);
      render(shownName(item));
      select(item);
    });
    li.append(a);
    for (const line of change.lines) li.append(el("div", line, "line"));
    list.append(li);
  }
  if (!view.changes.length) list.append(el("li", "No architectural change."));
}

// --- URL fragment: the expanded modules and the selection ---------------------------------

function saveHash() {
  const doc = { e: [...state.expanded].map((m) => mods[m].path).sort() };
  if (state.selected) doc.s = keyOf(state.selected);
  try {
    history.replaceState(null, "", `#${encodeURIComponent(JSON.stringify(doc))}`);
  } catch {
    // A sandboxed frame (Jupyter) may refuse: the view works, only the link does not follow.
  }
}

function loadHash() {
  if (location.hash.length < 2) return;
  try {
    const doc = JSON.parse(decodeURIComponent(location.hash.slice(1)));
    state.expanded = new Set((doc.e || []).filter((p) => moduleByPath.has(p)).map((p) => moduleByPath.get(p)));
    if (typeof doc.s === "string") state.selected = itemFromKey(doc.s);
  } catch {
    // A hand-edited or foreign fragment: open at the default view.
  }
}

// --- input: clicks, pan, zoom, controls ---------------------------------------------------

function onClick(target) {
  const g = target.closest("g.node, g.cluster");
  if (!g) return;
  const name = g.querySelector(":scope > title").textContent;
  const item = itemOf(name);
  if (item.piece !== undefined) return toggle(item.module);
  if (item.leaf !== undefined) return select(item, false);
  if (target.closest("text")) return toggle(item.module); // a cluster's title
  select(item, false);
}

function wire() {
  const canvas = $("canvas");
  let drag = null;
  canvas.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY, box: { ...box }, moved: false };
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    drag.moved = true;
    canvas.classList.add("dragging");
    const rect = svg.getBoundingClientRect();
    const s = Math.max(drag.box.w / rect.width, drag.box.h / rect.height);
    setBox({ ...drag.box, x: drag.box.x - dx * s, y: drag.box.y - dy * s });
  });
  canvas.addEventListener("pointerup", (e) => {
    const click = drag && !drag.moved;
    drag = null;
    canvas.classList.remove("dragging");
    if (click) onClick(e.target);
  });
  canvas.addEventListener(
    "wheel",
    (e) => {
      e.preventDefault();
      const f = Math.exp(e.deltaY * 0.0015);
      const p = svg.createSVGPoint();
      p.x = e.clientX;
      p.y = e.clientY;
      const at = p.matrixTransform(svg.getScreenCTM().inverse());
      setBox({ x: at.x - (at.x - box.x) * f, y: at.y - (at.y - box.y) * f, w: box.w * f, h: box.h * f });
    },
    { passive: false },
  );
  $("fit").addEventListener("click", fit);
  $("expand-all").addEventListener("click", () => {
    state.expanded = new Set(mods.keys());
    render(null);
  });
  const depth = $("depth");
  const deepest = Math.max(1, ...mods.map((m) => m.depth + 1));
  depth.append(new Option("custom", ""));
  for (let d = 1; d <= deepest; d++) depth.append(new Option(d === deepest ? `${d} (all)` : String(d), d));
  syncDepth();
  depth.addEventListener("change", () => {
    if (!depth.value) return;
    const d = Number(depth.value);
    state.expanded = new Set([...mods.keys()].filter((k) => mods[k].depth < d));
    render(null);
  });
  $("unchanged").addEventListener("change", (e) => {
    state.expanded = e.target.checked ? new Set(mods.keys()) : new Set(view.expanded);
    render(null);
  });
  const input = $("search");
  input.addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    if (state.query === input.value) jump(e.shiftKey ? -1 : 1);
    else search((state.query = input.value));
  });
  $("next").addEventListener("click", () => jump(1));
  $("prev").addEventListener("click", () => jump(-1));
}

async function main() {
  document.title = `${view.title} · nnviz`;
  $("title").textContent = view.title;
  $("summary").textContent = view.summary || "";
  legend();
  changelog();
  wire();
  loadHash();
  graphviz = await loading;
  timings.loaded = performance.now();
  render(null);
  if (state.selected) select(state.selected);
}

main().catch((error) => {
  $("status").textContent = "failed to start";
  console.error("nnviz:", error);
});

// The Depth selector shows the depth the drawing is opened to, or "custom" once modules were
// opened or closed one by one (called after every render).
function syncDepth() {
  const depth = $("depth");
  if (!depth || !depth.options.length) return;
  let value = "";
  for (const option of depth.options) {
    const d = Number(option.value);
    const open = [...mods.keys()].filter((k) => mods[k].depth < d);
    if (d && open.length === state.expanded.size && open.every((k) => state.expanded.has(k))) {
      value = option.value;
      break;
    }
  }
  depth.value = value;
}
