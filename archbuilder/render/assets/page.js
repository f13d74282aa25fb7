// archbuilder interactive diagram: lays out the page model (window.ARCH) and draws it as SVG.
// The model is a tree (blocks > branches > layers, groups > blocks); the network is
// series-parallel, so a recursive layout (sequences stacked, branches side by side) places
// every fold state at once, without a general graph layout.
"use strict";
(function () {
  let M = JSON.parse(document.getElementById("arch-data").textContent); // replaced when served live
  const SVG = "http://www.w3.org/2000/svg";
  const FONT = "12px Helvetica, Arial, sans-serif";
  const LINE = 15, PAD = 10, GAP = 22, COL = 18, TITLE = 46, STATUS = {
    added: "#1a7f37", changed: "#d4770c", renamed: "#6f42c1", affected: "#8c8c8c", removed: "#cf222e",
  };
  const byId = new Map(), parent = new Map(), expanded = new Set();
  let selected = null, placed = new Map();
  const measure = document.createElement("canvas").getContext("2d");
  measure.font = FONT;

  function index(node, up) {
    byId.set(node.id, node);
    if (up) parent.set(node.id, up.id);
    (node.children || []).forEach((child) => index(child, node));
    if (node.merge) index(node.merge, node);
  }
  function reindex() {
    byId.clear();
    parent.clear();
    M.body.forEach((n) => index(n, null));
    M.aux.forEach((n) => index(n, null));
  }
  reindex();

  const fmt = (n) => n.toLocaleString("en-US");
  const shape = (s) => (s && s.length ? s.join("×") : "");
  function count(v) {
    for (const [u, s] of [["G", 1e9], ["M", 1e6], ["K", 1e3]]) if (v >= s) return (v / s).toFixed(2) + " " + u;
    return String(v);
  }
  const foldable = (n) => n.type === "group" || n.type === "aux" || n.type === "block" ||
    (n.type === "branch" && n.children.length > 0);
  const isOpen = (n) => foldable(n) && expanded.has(n.id);

  function titleOf(n) {
    if (n.type === "op") return n.name === n.kind || n.name.toLowerCase() === n.label.toLowerCase()
      ? n.label : n.name + " · " + n.label;
    if (n.type === "block") return n.name + " · " + (n.what || n.kind);
    if (n.type === "branch") return n.name + " · " + n.label;
    if (n.type === "aux") return n.name + " · " + n.label;
    if (n.type === "group") return n.name + " · " + n.label;
    return n.name;
  }
  function facts(n) {
    const parts = [shape(n.shape)];
    if (n.params || n.macs) parts.push(fmt(n.params) + " params", count(n.macs) + " MACs");
    return parts.join(" · ");
  }
  const width = (text) => measure.measureText(text).width;

  // ---- layout: each function returns {w, h, draw(x, y, g)} with the entry at top centre
  // and the exit at bottom centre.
  function lay(n) {
    if (isOpen(n)) return n.type === "block" ? layBlock(n) : layFrame(n);
    return layBox(n);
  }
  function layBox(n) {
    const mark = foldable(n) ? (n.type === "group" ? "⊞ " : "▸ ") : "";
    const lines = [mark + titleOf(n), facts(n)];
    const w = Math.ceil(Math.max(...lines.map(width))) + 2 * PAD, h = lines.length * LINE + 10;
    return { w, h, draw(x, y, g) { drawBox(n, lines, x, y, w, h, g); } };
  }
  function laySeq(items) {
    const parts = items.map(lay);
    const w = Math.max(0, ...parts.map((p) => p.w));
    const h = parts.reduce((s, p) => s + p.h, 0) + GAP * Math.max(0, parts.length - 1);
    return {
      w, h, parts,
      draw(x, y, g) {
        let top = y;
        parts.forEach((p, i) => {
          if (i) edge(g, x + w / 2, top - GAP, x + w / 2, top, items[i - 1]);
          p.draw(x + (w - p.w) / 2, top, g);
          top += p.h + GAP;
        });
      },
    };
  }
  function frameTitle(n) {
    return ["▾ " + (n.type === "branch" ? n.name : titleOf(n)), facts(n)];
  }
  function layFrame(n) { // an open group or aux head: its children in a column
    const inner = laySeq(n.children), lines = frameTitle(n);
    const w = Math.max(inner.w, ...lines.map(width)) + 2 * PAD, h = TITLE + inner.h + PAD;
    return {
      w, h,
      draw(x, y, g) {
        drawFrame(n, lines, x, y, w, h, g);
        inner.draw(x + (w - inner.w) / 2, y + TITLE, g);
      },
    };
  }
  function layBlock(n) { // an open block: branches side by side, then the merge
    const cols = n.children.map((b) => (b.children.length ? lay(b) : { w: 12, h: 0, draw() {} }));
    const merge = layBox(n.merge), lines = frameTitle(n);
    const rowW = cols.reduce((s, c) => s + c.w, 0) + COL * (cols.length - 1);
    const rowH = Math.max(...cols.map((c) => c.h));
    const w = Math.max(rowW, merge.w, ...lines.map(width)) + 2 * PAD;
    const h = TITLE + GAP + rowH + GAP + merge.h + PAD;
    return {
      w, h,
      draw(x, y, g) {
        drawFrame(n, lines, x, y, w, h, g);
        const fx = x + w / 2, fy = y + TITLE - 5, top = y + TITLE + GAP, bottom = top + rowH;
        const mx = x + (w - merge.w) / 2, my = bottom + GAP;
        let cx = x + (w - rowW) / 2;
        dot(g, fx, fy);
        cols.forEach((c, i) => {
          const bx = cx + c.w / 2, branch = n.children[i];
          curve(g, fx, fy, bx, top, branch.children.length ? "edge" : "edge identity");
          c.draw(cx, top, g);
          path(g, `M${bx},${top + c.h} L${bx},${bottom} C${bx},${my - 6} ${fx},${bottom + 6} ${fx},${my}`,
            "edge");
          cx += c.w + COL;
        });
        merge.draw(mx, my, g);
      },
    };
  }

  // ---- drawing
  function el(tag, attrs, g) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (g) g.appendChild(e);
    return e;
  }
  function colours(n) {
    const f = M.families[n.family] || { fill: "#fff", line: "#333" };
    const line = n.status && STATUS[n.status] ? STATUS[n.status] : f.line;
    if (M.overlay && n.overlay) { // --color-by: the value's colour on the overlay's scale
      return { fill: n.overlay.fill, ink: n.overlay.ink, line: n.status && STATUS[n.status] ? line : "#333" };
    }
    return { fill: f.fill, line };
  }
  function ink(g, c) { if (c.ink) g.style.fill = c.ink; } // text that reads on an overlay's fill
  function group(n, g, x, y, w, h, cls) {
    const gg = el("g", { class: cls + (n.status ? " status-" + n.status : ""), "data-id": n.id,
      "data-type": n.type }, g);
    if (n.op) gg.setAttribute("data-op", n.op);
    el("title", {}, gg).textContent = titleOf(n) + "\n" + (n.type === "block" ? n.label + "\n" : "") + facts(n);
    placed.set(n.id, { x, y, w, h });
    gg.setAttribute("tabindex", "0");
    gg.setAttribute("role", "button");
    gg.setAttribute("aria-label", titleOf(n) + ", " + facts(n));
    gg.addEventListener("click", (ev) => { ev.stopPropagation(); if (!moved) activate(n); });
    gg.addEventListener("keydown", (ev) => {
      const act = NODE_KEYS[ev.key];
      if (!act || ev.altKey || ev.ctrlKey || ev.metaKey) return;
      ev.preventDefault();
      act(n, gg);
    });
    gg.addEventListener("focus", () => {
      if (refocusing || !gg.matches(":focus-visible")) return; // a click is not a keyboard visit
      keepInView(placed.get(n.id));
      inspect(n);
    });
    gg.addEventListener("mouseenter", () => inspect(n));
    gg.addEventListener("mouseleave", () => { if (selected) inspect(selected); });
    return gg;
  }
  // a focused node as in a tree view: ↑/↓ the previous/next node, → unfolds, ← folds or
  // goes up to the block that holds it
  const NODE_KEYS = {
    Enter: activate, " ": activate,
    ArrowDown: (n, g) => step(g, 1), ArrowUp: (n, g) => step(g, -1),
    ArrowRight: (n) => { if (foldable(n) && !isOpen(n)) activate(n); },
    ArrowLeft: (n) => (isOpen(n) ? activate(n) : focusNode(parent.get(n.id))),
  };
  function step(g, by) {
    const all = [...view.querySelectorAll("[tabindex]")], next = all[all.indexOf(g) + by];
    if (next) next.focus();
  }
  function focusNode(id) {
    const g = id && view.querySelector(`[data-id="${CSS.escape(id)}"]`);
    if (g) g.focus();
  }
  function text(g, x, y, s, cls) {
    const t = el("text", { x, y, class: cls || "" }, g);
    t.textContent = s;
    return t;
  }
  function drawBox(n, lines, x, y, w, h, g) {
    const c = colours(n), gg = group(n, g, x, y, w, h, "node" + (foldable(n) ? " foldable" : ""));
    const wide = n.status && n.status !== "unchanged" ? 3 : 1.2;
    el("rect", { x, y, width: w, height: h, rx: n.type === "op" ? 6 : 3, fill: c.fill, stroke: c.line,
      "stroke-width": wide, "stroke-dasharray": n.type === "aux" ? "5 3" : "" }, gg);
    if (n.type === "group") el("rect", { x: x + 3, y: y + 3, width: w - 6, height: h - 6, rx: 2,
      fill: "none", stroke: c.line, "stroke-width": 0.6 }, gg);
    lines.forEach((s, i) => ink(text(gg, x + w / 2, y + 5 + LINE * (i + 0.8), s, i ? "facts" : "title"), c));
  }
  function drawFrame(n, lines, x, y, w, h, g) {
    const c = colours(n), gg = group(n, g, x, y, w, h, "frame foldable");
    el("rect", { x, y, width: w, height: h, rx: 8, fill: c.fill, "fill-opacity": 0.55, stroke: c.line,
      "stroke-width": n.status && n.status !== "unchanged" ? 3 : 1,
      "stroke-dasharray": n.type === "aux" ? "5 3" : "" }, gg);
    lines.forEach((s, i) => ink(text(gg, x + w / 2, y + 4 + LINE * (i + 0.8), s, i ? "facts" : "title"), c));
  }
  function path(g, d, cls) { el("path", { d, class: cls, "marker-end": "url(#arrow)" }, g); }
  function edge(g, x1, y1, x2, y2) { path(g, `M${x1},${y1} L${x2},${y2 - 1}`, "edge"); }
  function curve(g, x1, y1, x2, y2, cls) {
    const m = (y1 + y2) / 2;
    el("path", { d: `M${x1},${y1} C${x1},${m} ${x2},${m} ${x2},${y2}`, class: cls }, g);
  }
  function dot(g, x, y) { el("circle", { cx: x, cy: y, r: 2.5, class: "port" }, g); }

  // ---- the whole picture: the main column, aux heads beside it at their taps
  const svg = document.getElementById("canvas"), view = document.getElementById("view");
  const MIN_SCALE = 0.35, MARGIN = 20; // the smallest scale whose 12 px text stays readable
  let scale = 1, tx = 0, ty = 0;
  function tapTarget(name) {
    let id = name;
    while (id && !placed.has(id)) id = parent.get(id);
    if (placed.has(name)) { // an open block: its merge is where the tap reads
      const n = byId.get(name);
      if (n && n.merge && placed.has(n.merge.id)) return placed.get(n.merge.id);
    }
    return placed.get(id);
  }
  let refocusing = false; // a redraw gives focus back to the redrawn node without moving the view
  function render() {
    const focusId = view.contains(document.activeElement) ? document.activeElement.dataset.id : null;
    placed = new Map();
    view.replaceChildren();
    const main = laySeq(M.body);
    main.draw(0, 0, view);
    let bottom = -Infinity;
    const left = main.w + 70;
    M.aux.forEach((head) => {
      const tap = tapTarget(head.tap), l = lay(head);
      const y = Math.max(tap ? tap.y : 0, bottom + GAP);
      l.draw(left, y, view);
      if (tap) {
        const x1 = tap.x + tap.w, y1 = tap.y + tap.h / 2, x2 = left + l.w / 2;
        el("path", { d: `M${x1},${y1} C${x1 + 40},${y1} ${x2},${y - 30} ${x2},${y}`, class: "edge tap",
          "marker-end": "url(#arrow)" }, view);
      }
      bottom = y + l.h;
    });
    document.querySelectorAll(".selected").forEach((e) => e.classList.remove("selected"));
    if (selected) {
      const e = view.querySelector(`[data-id="${CSS.escape(selected.id)}"]`);
      if (e) e.classList.add("selected");
    }
    apply();
    const again = focusId && view.querySelector(`[data-id="${CSS.escape(focusId)}"]`);
    if (again) {
      refocusing = true;
      again.focus({ preventScroll: true });
      refocusing = false;
    }
  }
  function apply() { view.setAttribute("transform", `translate(${tx},${ty}) scale(${scale})`); }
  function centreOn(id) {
    const p = placed.get(id);
    if (!p) return;
    const r = svg.getBoundingClientRect();
    tx = r.width / 2 - (p.x + p.w / 2) * scale;
    ty = r.height / 3 - (p.y + p.h / 2) * scale;
    apply();
  }

  // ---- interaction
  function activate(n) {
    const before = placed.get(n.id);
    if (foldable(n)) (expanded.has(n.id) ? expanded.delete(n.id) : expanded.add(n.id));
    select(n);
    const after = placed.get(n.id);
    if (before && after) { // the node stays where it was clicked; the rest moves around it
      tx += (before.x + before.w / 2 - after.x - after.w / 2) * scale;
      ty += (before.y - after.y) * scale;
      apply();
    }
    if (foldable(n)) keepInView(enclose([n, ...auxHeadsOf(n)].map((m) => placed.get(m.id))));
  }
  function within(id, ancestor) {
    for (; id; id = parent.get(id)) if (id === ancestor) return true;
    return false;
  }
  const auxHeadsOf = (n) => M.aux.filter((head) => within(head.tap, n.id));
  function enclose(boxes) {
    const x = Math.min(...boxes.map((b) => b.x)), y = Math.min(...boxes.map((b) => b.y));
    const right = Math.max(...boxes.map((b) => b.x + b.w)), bottom = Math.max(...boxes.map((b) => b.y + b.h));
    return { x, y, w: right - x, h: bottom - y };
  }
  function select(n) {
    selected = n;
    render();
    inspect(n);
  }
  function setAll(open) {
    expanded.clear();
    if (open) byId.forEach((n) => { if (foldable(n)) expanded.add(n.id); });
    render();
    fit();
  }
  function reveal(n) {
    for (let id = parent.get(n.id); id; id = parent.get(id)) expanded.add(id);
    select(n);
    centreOn(n.id);
    const holder = enclosingBlock(n);
    if (holder) { // a deep layer says little without the title of the block it belongs to
      const title = { ...placed.get(holder.id), h: TITLE };
      keepInView(enclose([title, placed.get(n.id)]));
    }
  }
  function enclosingBlock(n) {
    for (let id = parent.get(n.id); id; id = parent.get(id)) {
      const up = byId.get(id);
      if (up.type === "block" || up.type === "aux") return up;
    }
    return null;
  }

  function row(dl, key, value) {
    if (value === undefined || value === null || value === "") return;
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = key;
    dd.textContent = value;
    dl.append(dt, dd);
  }
  function inspect(n) {
    const panel = document.getElementById("inspect");
    panel.replaceChildren();
    const h = document.createElement("h2");
    h.textContent = n.name;
    // under the name: what it is, and where it sits (4a › branch3x3), not a bare identifier
    const what = document.createElement("p"), parents = n.id.split(".").slice(0, -1);
    what.className = "what";
    what.textContent = [n.label || n.kind, parents.length ? "in " + parents.join(" › ") : ""]
      .filter(Boolean).join(" · ");
    const dl = document.createElement("dl");
    panel.append(h, what, dl);
    row(dl, "id", n.id);
    row(dl, "kind", n.type === "op" ? n.kind : n.type + (n.kind !== n.type ? " · " + n.kind : ""));
    if (n.label) row(dl, "what", n.label);
    row(dl, "input", n.inputs.map(shape).join(", "));
    row(dl, "output", shape(n.shape));
    row(dl, "params", fmt(n.params));
    row(dl, "MACs", fmt(n.macs));
    row(dl, "share of MACs", M.total.macs ? (100 * n.macs / M.total.macs).toFixed(2) + " %" : "");
    if (M.overlay && n.overlay) {
      row(dl, M.overlay.metric, n.overlay.text);
      row(dl, "share of " + M.overlay.metric, n.overlay.share);
    }
    if (n.section) row(dl, "section", n.section);
    if (n.status) row(dl, "compare", n.status);
    for (const k in n.attrs || {}) row(dl, k, n.attrs[k]); // written out by page.py: 3×3, batch norm
    (n.changes || []).forEach((c) => row(dl, "Δ " + c.path, `${c.old} → ${c.new}`));
    (n.src || []).forEach((s) => {
      const cap = document.createElement("div"), pre = document.createElement("pre");
      cap.className = "where";
      const file = M.files[s.file];
      cap.textContent = s.last > s.first ? `${file}:${s.first}–${s.last}` : `${file}:${s.first}`;
      const lines = M.lines[s.file] || {};
      for (let i = s.first; i <= s.last; i++) if (lines[i] !== undefined) {
        // one block per line; a wrapped line hangs under its own indentation, not the number
        const line = document.createElement("span"), ln = document.createElement("span");
        const text = lines[i], hang = 6 + text.length - text.trimStart().length + 2;
        line.className = "yl";
        line.style.paddingLeft = hang + "ch";
        line.style.textIndent = -hang + "ch";
        ln.className = "ln";
        ln.textContent = String(i).padStart(4) + "  ";
        line.append(ln);
        const k = n.key;
        if (k && k.file === s.file && k.line === i) { // the key this layer's width comes from
          const mark = document.createElement("mark");
          mark.textContent = text.slice(k.start, k.end);
          line.append(text.slice(0, k.start), mark, text.slice(k.end));
        } else line.append(text);
        pre.append(line);
      }
      panel.append(cap, pre);
    });
  }

  // find: a name or part of an id; arrows move, Enter jumps, Escape closes
  const find = document.getElementById("find"), hits = document.getElementById("hits");
  let found = [], at = 0;
  function search() {
    const q = find.value.trim().toLowerCase();
    found = [];
    if (q) byId.forEach((n) => {
      const name = n.name.toLowerCase(), id = n.id.toLowerCase();
      if (id === q || name === q) found.unshift(n);
      else if (id.includes(q) || name.includes(q)) found.push(n);
    });
    at = 0;
    showHits();
  }
  function showHits() {
    hits.replaceChildren();
    found.slice(0, 14).forEach((n, i) => {
      const li = document.createElement("li");
      li.textContent = n.id + "  ·  " + (n.type === "op" ? n.label : n.kind);
      li.className = i === at ? "current" : "";
      li.addEventListener("mousedown", (ev) => { ev.preventDefault(); go(i); });
      hits.appendChild(li);
    });
    hits.hidden = !found.length;
  }
  function go(i) {
    if (!found.length) return;
    at = i;
    reveal(found[at]);
    hits.hidden = true; // the list would cover what was found; typing opens it again
  }
  find.addEventListener("input", search);
  find.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown") { at = Math.min(at + 1, Math.min(found.length, 14) - 1); showHits(); }
    else if (ev.key === "ArrowUp") { at = Math.max(at - 1, 0); showHits(); }
    else if (ev.key === "Enter") go(at);
    else if (ev.key === "Escape") { find.value = ""; search(); find.blur(); }
    else return;
    ev.preventDefault();
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "/" && document.activeElement !== find) { ev.preventDefault(); find.focus(); }
  });
  find.addEventListener("blur", () => { setTimeout(() => { hits.hidden = true; }, 100); });
  find.addEventListener("focus", () => showHits());

  // pan and zoom
  let drag = null, moved = false; // a drag that ends on a node is a pan, not a click
  svg.addEventListener("mousedown", (ev) => {
    drag = { x: ev.clientX - tx, y: ev.clientY - ty, x0: ev.clientX, y0: ev.clientY };
    moved = false;
  });
  window.addEventListener("mousemove", (ev) => {
    if (!drag) return;
    moved = moved || Math.abs(ev.clientX - drag.x0) + Math.abs(ev.clientY - drag.y0) > 4;
    tx = ev.clientX - drag.x; ty = ev.clientY - drag.y; apply();
  });
  window.addEventListener("mouseup", () => { drag = null; });
  // Bring a box of the drawing into view: zoom out only as far as it needs (not below the
  // readable minimum), then pan the least; what still does not fit shows its top left.
  function keepInView(box) {
    const r = svg.getBoundingClientRect();
    const fits = Math.min((r.width - 2 * MARGIN) / box.w, (r.height - 2 * MARGIN) / box.h);
    if (fits < scale) zoomCentre(Math.max(fits, Math.min(scale, MIN_SCALE)));
    tx += shift(tx + box.x * scale, tx + (box.x + box.w) * scale, r.width);
    ty += shift(ty + box.y * scale, ty + (box.y + box.h) * scale, r.height);
    apply();
  }
  function shift(lo, hi, size) { // the least move putting [lo, hi] inside the margins, lo first
    if (lo < MARGIN) return MARGIN - lo;
    return hi > size - MARGIN ? Math.max(size - MARGIN - hi, MARGIN - lo) : 0;
  }
  function zoomAbout(px, py, to) { // (px, py), in the drawing area, stays where it is
    const s = Math.min(4, Math.max(0.05, to));
    tx = px - (px - tx) * (s / scale); ty = py - (py - ty) * (s / scale); scale = s;
    apply();
  }
  function zoomCentre(to) {
    const r = svg.getBoundingClientRect();
    zoomAbout(r.width / 2, r.height / 2, to);
  }
  svg.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = svg.getBoundingClientRect();
    zoomAbout(ev.clientX - r.left, ev.clientY - r.top, scale * Math.exp(-ev.deltaY * 0.0015));
  }, { passive: false });
  // Fit the whole drawing; when that would make its text unreadable, fit its width from the
  // top and leave the rest to panning.
  function fit() {
    const b = view.getBBox(), r = svg.getBoundingClientRect();
    const across = (r.width - 2 * MARGIN) / b.width, down = (r.height - 2 * MARGIN) / b.height;
    const whole = Math.min(1, across, down);
    scale = whole >= MIN_SCALE ? whole : Math.min(1, across);
    tx = (r.width - b.width * scale) / 2 - b.x * scale;
    ty = Math.max(MARGIN, (r.height - b.height * scale) / 2) - b.y * scale;
    apply();
  }
  const on = (id, f) => document.getElementById(id).addEventListener("click", f);
  on("expand-all", () => setAll(true));
  on("collapse-all", () => setAll(false));
  on("fit", fit);
  on("zoom-100", () => zoomCentre(1));
  function zoomButton(id, label, name, factor) {
    const b = document.createElement("button");
    Object.assign(b, { id, textContent: label, title: name });
    b.setAttribute("aria-label", name);
    b.addEventListener("click", () => zoomCentre(scale * factor));
    document.getElementById("fit").before(b);
  }
  zoomButton("zoom-out", "−", "zoom out", 1 / 1.25);
  zoomButton("zoom-in", "+", "zoom in", 1.25);

  // title and legend
  const legend = document.getElementById("legend");
  function key(fill, line, name, dashed) {
    const li = document.createElement("li"), sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = fill;
    sw.style.border = `${dashed ? "2px dashed" : "1.5px solid"} ${line}`;
    li.append(sw, name);
    legend.appendChild(li);
  }
  function header() {
    document.getElementById("title").textContent = M.name;
    const aux = M.aux.length ? ` (${fmt(M.without_aux.params)} without aux heads)` : "";
    document.getElementById("totals").textContent =
      `input ${shape(M.input)} · ${fmt(M.total.params)} params${aux} · ${count(M.without_aux.macs)} MACs`;
    legend.replaceChildren();
    if (M.overlay) { // a colour bar: the scale's low end to its high, each step with its value
      const li = document.createElement("li");
      li.className = "overlay-caption";
      li.textContent = M.overlay.caption;
      legend.appendChild(li);
      M.overlay.ticks.forEach((t) => key(t.fill, t.fill, t.text));
      key(M.overlay.none, "#999", "no value");
    } else Object.values(M.families).forEach((f) => key(f.fill, f.line, f.name));
    const note = document.getElementById("compare");
    note.hidden = !M.compare;
    if (M.compare) {
      ["added", "changed", "renamed", "affected"].forEach((s) => key("#fff", STATUS[s], s));
      note.textContent = `compared with ${M.compare}` +
        (M.removed.length ? ` · removed: ${M.removed.join(", ")}` : "");
    }
  }
  header();
  render();
  fit();

  // ---- live (archbuild serve): each save redraws the page, keeping folds, selection and view;
  // a spec that does not validate lists its problems over the last good drawing, greyed.
  function update(data) {
    if (data.model) {
      const empty = !M.body.length;
      M = data.model;
      reindex();
      selected = selected && (byId.get(selected.id) || null);
      header();
      render();
      if (empty) fit();
      if (selected) inspect(selected);
    }
    document.body.classList.toggle("stale", !!data.stale);
    showProblems(data.problems || []);
    document.body.dataset.version = String(data.version);
  }
  function nodeAt(file, line) { // the smallest node whose spec lines hold file:line
    const at = M.files.indexOf(file);
    let best = null, span = Infinity;
    byId.forEach((n) => (n.src || []).forEach((s) => {
      if (s.file !== at || line < s.first || line > s.last) return;
      const size = s.last - s.first;
      if (size < span || (size === span && best && n.id.length > best.id.length)) { best = n; span = size; }
    }));
    return best;
  }
  function showProblems(problems) {
    let box = document.getElementById("problems");
    if (!problems.length) { if (box) box.remove(); return; }
    if (!box) {
      box = document.createElement("section");
      box.id = "problems";
      box.setAttribute("role", "alert");
      document.body.insertBefore(box, document.getElementById("inspect"));
    }
    const title = document.createElement("h2"), list = document.createElement("ol");
    title.textContent = `${problems.length} problem${problems.length > 1 ? "s" : ""} in the spec` +
      (M.body.length ? " · the drawing is the last one that validated" : "");
    problems.forEach((p) => {
      const li = document.createElement("li"), go = document.createElement("button");
      const where = document.createElement("span"), what = document.createElement("span");
      go.className = "problem";
      where.className = "where";
      where.textContent = p.line ? `${p.file}:${p.line}:${p.column}` : p.file;
      what.textContent = `${p.key}: ${p.message}`;
      go.append(where, ": ", what);
      if (p.text !== undefined && p.text !== null) {
        const pre = document.createElement("pre");
        pre.textContent = `${String(p.line).padStart(4)}  ${p.text}`;
        go.append(pre);
      }
      const node = p.line ? nodeAt(p.file, p.line) : null;
      if (node) go.dataset.node = node.id;
      go.addEventListener("click", () => {
        const n = byId.get(go.dataset.node);
        if (n) reveal(n);
        else { // no node there (a key of the spec's top level): the line itself, in the inspector
          const panel = document.getElementById("inspect"), h = document.createElement("h2");
          h.textContent = where.textContent;
          const said = document.createElement("p");
          said.textContent = what.textContent;
          panel.replaceChildren(h, said, ...[...go.querySelectorAll("pre")].map((e) => e.cloneNode(true)));
        }
      });
      li.append(go);
      list.append(li);
    });
    box.replaceChildren(title, list);
  }
  function follow() {
    let wanted = 0, shown = -1, busy = false;
    async function pull() {
      if (busy) return;
      busy = true;
      try {
        while (shown < wanted) {
          const data = await (await fetch("model.json", { cache: "no-store" })).json();
          update(data);
          shown = data.version;
        }
      } catch (e) { // the server went away; the stream says when it is back
      } finally { busy = false; }
    }
    new EventSource("events").addEventListener("update", (ev) => {
      const version = Number(ev.data);
      if (version < shown) shown = -1; // a new server: start again
      wanted = version;
      pull();
    });
  }
  if (document.body.classList.contains("live")) follow();
  window.archbuilderPage = { expandAll: () => setAll(true), collapseAll: () => setAll(false), reveal: (id) => reveal(byId.get(id)) };
})();
