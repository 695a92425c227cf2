/* The planner's pages: start drafts, edit a draft's grids on the map (split along a drawn
   line, merge, move to another community), show the impact preview after every edit, and
   activate. All changes go through the boundary-version API. */

async function gridlineSend(url, csrf, payload, method = "POST") {
  const response = await fetch(url, {
    method,
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  const body = response.status === 204 ? {} : await response.json();
  if (!response.ok) throw new Error((body.error && body.error.message) || response.statusText);
  return body;
}

function gridlinePlannerVersions(options) {
  const message = document.getElementById("message");
  for (const button of document.querySelectorAll("button.start-draft")) {
    button.addEventListener("click", async () => {
      try {
        const draft = await gridlineSend(button.dataset.url, options.csrf, {});
        window.location = options.page + draft.version;
      } catch (error) {
        message.textContent = error.message;
      }
    });
  }
}

function gridlinePlanner(map, options) {
  const labels = options.labels;
  const message = document.getElementById("message");
  const selected = new Set();
  let changed = new Set();
  let drawing = null;  // the points of the line being drawn, or null
  let revision = options.revision;

  const grids = L.geoJSON(null, {
    style: (feature) => {
      const code = feature.properties.code;
      return {
        color: selected.has(code) ? "#d95f02" : "#1f3a5f",
        weight: selected.has(code) ? 3 : 1,
        fillColor: changed.has(code) ? "#e7298a" : "#1f3a5f",
        fillOpacity: changed.has(code) ? 0.35 : 0.04,
      };
    },
    onEachFeature: (feature, layer) => {
      const p = feature.properties;
      layer.bindTooltip(`${escape(p.code)} ${escape(p.name)}`);
      layer.on("click", (event) => {
        if (drawing) return addPoint(event.latlng);
        if (selected.has(p.code)) selected.delete(p.code); else selected.add(p.code);
        refreshStyle();
      });
    },
  }).addTo(map);
  map.gridlineGrids = grids;
  const line = L.polyline([], {color: "#d95f02", weight: 3, dashArray: "6 4"}).addTo(map);
  map.on("click", (event) => { if (drawing) addPoint(event.latlng); });

  function addPoint(latlng) {
    drawing.push([latlng.lng, latlng.lat]);
    line.setLatLngs(drawing.map(([x, y]) => [y, x]));
  }

  function refreshStyle() {
    grids.setStyle(grids.options.style);
    const text = [...selected].join(", ");
    const box = document.getElementById("selection");
    if (box) box.textContent = text || "–";
  }

  async function loadGrids() {
    const response = await fetch(options.urls.grids, {cache: "no-store"});
    grids.clearLayers();
    grids.addData(await response.json());
    refreshStyle();
  }

  function escape(text) {
    const span = document.createElement("span");
    span.textContent = text == null ? "" : String(text);
    return span.innerHTML;
  }

  async function loadImpact() {
    const months = document.getElementById("months").value || "6";
    document.getElementById("impact-csv").href = `${options.urls.table}?months=${months}`;
    const response = await fetch(`${options.urls.impact}?months=${months}`, {cache: "no-store"});
    const impact = await response.json();
    if (!response.ok) { message.textContent = impact.error.message; return; }
    const s = impact.summary;
    const keys = ["grids_added", "grids_removed", "grids_reshaped", "grids_moved", "reports",
                  "reports_changing_grid", "reports_changing_community", "open_orders",
                  "open_orders_changing_grid", "open_orders_changing_community", "seconds"];
    document.getElementById("impact-summary").innerHTML = keys.map(
      (k) => `<dt>${escape(labels[k])}</dt><dd id="impact-${k}">${escape(s[k])}</dd>`).join("");
    document.querySelector("#impact-grids tbody").innerHTML = impact.grids.map((g) =>
      `<tr data-code="${escape(g.code)}"><td>${escape(g.code)}</td><td>${escape(labels[g.change])}</td>` +
      `<td>${escape(g.area_change_m2)}</td>` +
      `<td>${escape(g.reports_per_month_before)} → ${escape(g.reports_per_month_after)}</td>` +
      `<td>${escape(g.households_before)} → ${escape(g.households_after)}</td></tr>`).join("");
    document.getElementById("impact-people").innerHTML = impact.gridworkers.map((w) =>
      `<li>${escape(labels.gridworker)} ${escape(w.name)}: ${w.change_per_month > 0 ? "+" : ""}` +
      `${escape(w.change_per_month)} ${escape(labels.per_month)}</li>`).join("");
    document.getElementById("impact-stations").innerHTML = impact.stations.map((st) =>
      `<li>${escape(labels.station)} ${escape(st.name || st.station_id)}: ` +
      `${st.grids_gained.length ? escape(labels.gains) + " " + escape(st.grids_gained.join(", ")) : ""} ` +
      `${st.grids_lost.length ? escape(labels.loses) + " " + escape(st.grids_lost.join(", ")) : ""}</li>`).join("");
    changed = new Set(impact.grids.map((g) => g.code));
    refreshStyle();
  }

  async function edit(payload) {
    message.textContent = "";
    try {
      const info = await gridlineSend(options.urls.edit, options.csrf,
                                      {...payload, crs: options.crs, expected_revision: revision});
      revision = info.revision;
      message.textContent = info.edit;
      document.getElementById("validity").textContent = info.valid ? "✓" : "✗";
      document.getElementById("activate").disabled = !info.valid;
      document.getElementById("edits").insertAdjacentHTML("beforeend", `<li>${escape(info.edit)}</li>`);
      selected.clear();
      await loadGrids();
      await loadImpact();
    } catch (error) {
      message.textContent = error.message;
    }
  }

  function button(id, handler) {
    const element = document.getElementById(id);
    if (element) element.addEventListener("click", handler);
  }

  button("tool-split", () => {
    if (selected.size !== 1) { message.textContent = labels.select_one; return; }
    drawing = [];
    line.setLatLngs([]);
    document.getElementById("hint").textContent = labels.split_hint;
    document.getElementById("tool-finish").hidden = false;
  });
  button("tool-finish", async () => {
    const points = drawing || [];
    drawing = null;
    line.setLatLngs([]);
    document.getElementById("tool-finish").hidden = true;
    document.getElementById("hint").textContent = "";
    await edit({operation: "split", grid: [...selected][0],
                line: {type: "LineString", coordinates: points}});
  });
  button("tool-merge", () => edit({operation: "merge", grids: [...selected]}));
  button("tool-clear", () => { selected.clear(); refreshStyle(); });
  button("tool-reassign", () => {
    if (selected.size !== 1) { message.textContent = labels.select_one; return; }
    edit({operation: "reassign", grid: [...selected][0],
          community: document.getElementById("community").value});
  });
  button("tool-partition", () => {
    const number = (id) => Number(document.getElementById(id).value);
    edit({operation: "partition", communities: [document.getElementById("community").value],
          target: number("target"), min: number("low"), max: number("high")});
  });
  button("activate", async () => {
    try {
      await gridlineSend(options.urls.activate, options.csrf, {expected_revision: revision});
      message.textContent = labels.activated;
      window.location.reload();
    } catch (error) {
      message.textContent = error.message;
    }
  });
  document.getElementById("months").addEventListener("change", loadImpact);
  loadGrids().then(loadImpact);
}
