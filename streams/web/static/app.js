/* The node's web page: footprints of the federated catalog, tile layers from the
   overview pyramids, Natural Earth outlines, and the live pipeline (server-sent events).
   Everything comes from this node; nothing is loaded from elsewhere. */
"use strict";

const PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4",
                 "#f032e6", "#9a6324", "#469990", "#000075"];
const state = { map: null, tileLoads: 0, tileErrors: 0, footprints: {}, pipelineUpdates: 0,
                events: 0, layer: null, ready: false, quicklooks: [], quicklookErrors: 0,
                federation: {} };
window.gravitas = state;

const map = L.map("map", { worldCopyJump: true, maxZoom: 14 }).setView([30, -40], 3);
state.map = map;
map.attributionControl.setPrefix(false);
map.attributionControl.addAttribution("Natural Earth 1:110m");

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

async function loadCountries() {
  const geo = await getJSON("/web/countries.geojson");
  L.geoJSON(geo, { style: { color: "#777", weight: 1, fill: false }, interactive: false })
    .addTo(map);
}

function popup(props) {
  const box = el("div", undefined, "popup");
  box.appendChild(el("b", `${props.collection} / ${props.id}`));
  const table = el("table");
  const shown = Object.assign({ node: props.node, datetime: props.datetime }, props.properties);
  for (const [k, v] of Object.entries(shown)) {
    const tr = el("tr");
    tr.appendChild(el("td", k));
    tr.appendChild(el("td", typeof v === "object" ? JSON.stringify(v) : v));
    table.appendChild(tr);
  }
  box.appendChild(table);
  if (props.quicklook) {
    // only ever this node's asset route (/stac/assets/...), set by /web/footprints
    const img = el("img", undefined, "quicklook");
    img.alt = `quicklook of ${props.id}`;
    img.addEventListener("load", () => { state.quicklooks.push(props.id); });
    img.addEventListener("error", () => { state.quicklookErrors += 1; });
    img.src = props.quicklook;
    box.appendChild(img);
  }
  if (props.cube_quicklooks) cubeQuicklooks(box, props);
  return box;
}

async function cubeQuicklooks(box, props) {
  // a datacube split item: its collection's quicklook_<modality> assets, listed by this
  // node (/web/datacube-quicklooks/...), each image from a same-origin route it names
  let body;
  try {
    body = await getJSON(props.cube_quicklooks);
  } catch (err) {
    box.appendChild(el("p", `no datacube quicklook: ${err.message}`, "bad"));
    state.quicklookErrors += 1;
    return;
  }
  for (const q of body.quicklooks) {
    const fig = el("figure", undefined, "cube-quicklook");
    fig.dataset.modality = q.modality;
    const img = el("img", undefined, "quicklook");
    img.alt = `quicklook of ${props.id} (${q.modality})`;
    img.addEventListener("load", () => {
      state.quicklooks.push(`${props.id}:${q.modality}`);
    });
    img.addEventListener("error", () => { state.quicklookErrors += 1; });
    img.src = q.url;
    fig.appendChild(img);
    fig.appendChild(el("figcaption", `${body.collection}: ${q.caption}`));
    box.appendChild(fig);
  }
}

async function loadFootprints() {
  const fc = await getJSON("/web/footprints");
  document.getElementById("node-id").textContent = fc.this_node;
  const colors = {};
  fc.nodes.forEach((n, i) => { colors[n] = PALETTE[i % PALETTE.length]; });
  const counts = {};
  const layer = L.geoJSON(fc, {
    style: (f) => ({ color: colors[f.properties.node], weight: 2, fillOpacity: 0.15 }),
    onEachFeature: (f, lyr) => {
      counts[f.properties.node] = (counts[f.properties.node] || 0) + 1;
      lyr.bindPopup(() => popup(f.properties));
    },
  }).addTo(map);
  const list = document.getElementById("nodes");
  list.replaceChildren();
  for (const n of fc.nodes) {
    const li = el("li");
    const sw = el("span", undefined, "swatch");
    sw.style.background = colors[n];
    li.appendChild(sw);
    li.appendChild(document.createTextNode(`${n}: ${counts[n] || 0} items`));
    li.dataset.node = n;
    list.appendChild(li);
  }
  state.footprints = counts;
  if (fc.features.length) map.fitBounds(layer.getBounds(), { maxZoom: 6 });
}

let tiles = null;
let layers = [];

function tileUrl() {
  const name = document.getElementById("layer").value;
  const q = new URLSearchParams();
  const t = document.getElementById("time").value;
  if (t) q.set("time", t);
  const rescale = document.getElementById("rescale").value.trim();
  if (rescale) q.set("rescale", rescale);
  q.set("colormap", document.getElementById("colormap").value);
  return `/tiles/${encodeURIComponent(name)}/{z}/{x}/{y}.png?${q.toString()}`;
}

function drawTiles() {
  if (!document.getElementById("layer").value) return;
  if (tiles) map.removeLayer(tiles);
  tiles = L.tileLayer(tileUrl(), {
    opacity: Number(document.getElementById("opacity").value), maxZoom: 14,
    attribution: "gravitas pyramids",
  });
  tiles.on("tileload", () => { state.tileLoads += 1; });
  tiles.on("tileerror", () => { state.tileErrors += 1; });
  tiles.addTo(map);
  state.layer = document.getElementById("layer").value;
}

function fillTimes() {
  const info = layers.find((l) => l.name === document.getElementById("layer").value);
  const sel = document.getElementById("time");
  sel.replaceChildren();
  if (!info) return;
  for (const t of info.times.slice().reverse()) sel.appendChild(new Option(t, t));
  if (info.range) {
    document.getElementById("rescale").value = `${info.range[0]},${info.range[1]}`;
  }
}

async function loadLayers() {
  const body = await getJSON("/tiles");
  layers = body.layers;
  const sel = document.getElementById("layer");
  for (const l of layers) sel.appendChild(new Option(l.name, l.name));
  const cm = document.getElementById("colormap");
  for (const c of body.colormaps) cm.appendChild(new Option(c, c));
  cm.value = "viridis";
  fillTimes();
  sel.addEventListener("change", () => { fillTimes(); drawTiles(); });
  for (const id of ["time", "colormap"]) {
    document.getElementById(id).addEventListener("change", drawTiles);
  }
  document.getElementById("rescale").addEventListener("change", drawTiles);
  document.getElementById("opacity").addEventListener("input", (e) => {
    if (tiles) tiles.setOpacity(Number(e.target.value));
  });
  drawTiles();
}

function renderPipeline(snap) {
  const body = document.querySelector("#topics tbody");
  body.replaceChildren();
  for (const t of snap.topics) {
    const tr = el("tr");
    tr.dataset.topic = t.name;
    tr.appendChild(el("td", t.name));
    tr.appendChild(el("td", t.rate.toFixed(2), "num"));
    tr.appendChild(el("td", t.lag === null ? "–" : t.lag, "num"));
    tr.appendChild(el("td", t.seen, "num"));
    body.appendChild(tr);
  }
  const dl = document.getElementById("deadletters");
  dl.replaceChildren();
  for (const d of snap.deadletters) {
    dl.appendChild(el("li", `${d.source_topic}: ${d.error_class}: ${d.reason}`, "bad"));
  }
  const rq = document.getElementById("requests");
  rq.replaceChildren();
  for (const r of snap.requests) {
    rq.appendChild(el("li", `${r.request_id} ${r.stage} ${Math.round(r.fraction * 100)}%`));
  }
  renderFederation(snap.federation || []);
  state.pipelineUpdates += 1;
}

function num(v, digits) {
  return v === null || v === undefined ? "–" : Number(v).toFixed(digits || 0);
}

function renderFederation(rows) {
  document.getElementById("federation-section").hidden = rows.length === 0;
  const body = document.querySelector("#federation tbody");
  body.replaceChildren();
  const seen = {};
  for (const r of rows) {
    const tr = el("tr", undefined, r.status === "ok" ? "" : "bad");
    tr.dataset.node = r.node_id;
    tr.dataset.status = r.status;
    tr.appendChild(el("td", r.self ? `${r.node_id} (this node)` : r.node_id));
    tr.appendChild(el("td", r.status));
    tr.appendChild(el("td", num(r.event_rate, 2), "num"));
    tr.appendChild(el("td", num(r.lag), "num"));
    tr.appendChild(el("td", num(r.deadletters), "num"));
    tr.appendChild(el("td", num(r.requests), "num"));
    body.appendChild(tr);
    seen[r.node_id] = r.status;
  }
  state.federation = seen;
}

function addEvent(ev) {
  const list = document.getElementById("recent");
  list.prepend(el("li", `${ev.topic} ${ev.type} ${ev.key}`));
  while (list.children.length > 40) list.lastChild.remove();
  state.events += 1;
}

function live() {
  const source = new EventSource("/web/live");
  source.addEventListener("pipeline", (e) => renderPipeline(JSON.parse(e.data)));
  source.addEventListener("event", (e) => addEvent(JSON.parse(e.data)));
  state.live = source;
}

(async () => {
  await Promise.all([loadCountries(), loadFootprints(), loadLayers()]);
  live();
  state.ready = true;
})().catch((err) => { console.error(err); });
