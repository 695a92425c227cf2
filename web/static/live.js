/* The live map's work orders: fetched from the GeoJSON feed with the page's filters, redrawn
   every few seconds and whenever a filter changes, without reloading the page. */
function gridlineLive(map, options) {
  const layer = L.geoJSON(null, {
    pointToLayer: (feature, latlng) => {
      const p = feature.properties;
      return L.circleMarker(latlng, {
        radius: p.whistle ? 10 : 7,
        color: p.whistle ? "#ffd400" : (p.overdue ? "#b00020" : "#ffffff"),
        weight: p.whistle || p.overdue ? 3 : 1.5,
        fillColor: options.colours[p.urgency] || "#2c7bb6",
        fillOpacity: 0.9,
        dashArray: p.state === "resolved" || p.state === "verified" ? "3 3" : null,
        className: "order",
      });
    },
    onEachFeature: (feature, marker) => {
      const p = feature.properties;
      const lines = [
        `<b>#${p.id} ${escape(p.category_name)}</b>`,
        `${escape(p.state_name)}`,
        `${options.labels.grid}: ${escape(p.grid_code || "")}`,
        `${options.labels.created}: ${escape(p.created)}`,
        `${options.labels.due}: ${escape(p.due)}` + (p.overdue ? ` <b class="overdue">${options.labels.overdue}</b>` : ""),
      ];
      if (p.whistle) lines.push(`<b>${options.labels.whistle}</b>`);
      marker.bindPopup(lines.join("<br>") + `<br><a href="${p.url}">→</a>`);
    },
  }).addTo(map);
  map.gridlineOrders = layer;

  function escape(text) {
    const span = document.createElement("span");
    span.textContent = text == null ? "" : String(text);
    return span.innerHTML;
  }

  function query() {
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(options.form)) if (value && key !== "lang") params.set(key, value);
    return params.toString();
  }

  let pending = null;
  async function refresh() {
    if (pending) return pending;
    pending = (async () => {
      try {
        const response = await fetch(`${options.feed}?${query()}`, {cache: "no-store"});
        if (!response.ok) return;
        const data = await response.json();
        layer.clearLayers();
        layer.addData(data);
        const overdue = data.features.filter(f => f.properties.overdue);
        document.getElementById("order-count").textContent = data.features.length;
        document.getElementById("overdue-count").textContent = overdue.length;
        document.getElementById("whistle-count").textContent = data.features.filter(f => f.properties.whistle).length;
        document.getElementById("refreshed").textContent = new Date().toLocaleTimeString();
        const list = document.getElementById("overdue-list");
        list.replaceChildren(...overdue.map(f => {
          const item = document.createElement("li");
          const link = document.createElement("a");
          link.href = f.properties.url;
          link.textContent = `#${f.properties.id} ${f.properties.category_name} (${f.properties.grid_code || ""})`;
          item.append(link);
          return item;
        }));
        document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
      } finally {
        pending = null;
      }
    })();
    return pending;
  }

  options.form.addEventListener("change", () => {
    history.replaceState(null, "", `?${query()}`);
    refresh();
  });
  options.form.addEventListener("submit", event => { event.preventDefault(); refresh(); });
  refresh();
  setInterval(refresh, options.interval);
}
