/* The reporter's form: pick a place on the map (or the phone's own fix), then post the report to
   the native API and go on to the order's status page. Every text comes from the page, already
   in its language. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("report-config").textContent);
  var text = JSON.parse(document.getElementById("report-text").textContent);
  var form = document.getElementById("report-form");
  var fields = {
    lon: document.getElementById("lon"), lat: document.getElementById("lat"),
    crs: document.getElementById("crs"), category: document.getElementById("category"),
    photo: document.getElementById("photo")
  };
  var where = document.getElementById("where");
  var send = document.getElementById("send");

  var map = L.map("map", {zoomSnap: 0.25});
  if (config.tiles) {
    L.tileLayer(config.tiles.url, {attribution: config.tiles.attribution, maxZoom: 19})
      .addTo(map);
  }
  // Outlines only: taps fall through them to the map.
  L.geoJSON(config.outlines, {interactive: false,
                              style: {color: "#1f3a5f", weight: 1, opacity: 0.6, fill: false}})
    .addTo(map);
  map.fitBounds(config.bounds);
  var marker = null;

  /* Put the marker at a drawn position and the point to send (in system crs) in the form. */
  function place(drawn, lon, lat, crs) {
    if (marker) { marker.setLatLng(drawn); } else { marker = L.marker(drawn).addTo(map); }
    fields.lon.value = lon.toFixed(7);
    fields.lat.value = lat.toFixed(7);
    fields.crs.value = crs;
    clearError("lon");
    describe();
  }

  /* Say which grid the point falls in, so a wrong tap is noticed before sending. */
  function describe() {
    var system = fields.crs.value === "gcj02" ? "gcj02" : "4326";
    var url = config.point_url + "/" + system + "/" + fields.lon.value + "," + fields.lat.value;
    fetch(url).then(function (response) {
      return response.json().then(function (body) {
        if (response.status === 404) { where.textContent = text.outsideHere; return; }
        if (!response.ok) { where.textContent = ""; return; }
        where.textContent = text.here.replace("{grid}", body.grid.name || body.grid.code || "")
          .replace("{community}", body.community.name || "");
      });
    }).catch(function () { where.textContent = ""; });
  }

  map.on("click", function (event) {
    place(event.latlng, event.latlng.lng, event.latlng.lat, config.crs);
  });

  document.getElementById("locate").addEventListener("click", function () {
    if (!navigator.geolocation) { where.textContent = text.noFix; return; }
    navigator.geolocation.getCurrentPosition(function (position) {
      var lon = position.coords.longitude, lat = position.coords.latitude;
      var drawn = L.latLng(lat + config.offset[1], lon + config.offset[0]);
      place(drawn, lon, lat, "wgs84");
      map.setView(drawn, Math.max(map.getZoom(), 16));
    }, function () { where.textContent = text.noFix; },
    {enableHighAccuracy: true, timeout: 15000});
  });

  /* The category's extra questions, and whether it can be sent anonymously. */
  function chosen() {
    var code = fields.category.value;
    var option = fields.category.selectedOptions[0];
    document.getElementById("needs-contact").hidden = !option || option.dataset.anonymous !== "no";
    var questions = null;
    document.querySelectorAll("fieldset.attributes").forEach(function (set) {
      set.hidden = set.dataset.category !== code;
      if (!set.hidden) { questions = set; }
    });
    return questions;
  }
  fields.category.addEventListener("change", chosen);

  function answers(questions) {
    var found = {};
    questions.querySelectorAll("[data-code]").forEach(function (input) {
      var code = input.dataset.code;
      if (input.dataset.many === "yes") {
        found[code] = found[code] || [];
        if (input.checked) { found[code].push(input.value); }
      } else if (input.value !== "") {
        found[code] = input.value;
      }
    });
    return found;
  }

  function errorPlace(field) {
    var places = form.querySelectorAll("[data-error-for]");
    for (var i = 0; i < places.length; i++) {
      if (places[i].dataset.errorFor.split(" ").indexOf(field) >= 0 &&
          !places[i].closest("[hidden]")) { return places[i]; }
    }
    return document.getElementById("form-error");
  }

  function clearError(field) { errorPlace(field).textContent = ""; }

  function showError(status, error) {
    if (status === 413) { errorPlace("photo").textContent = text.tooLarge; return; }
    var field = error && error.field;
    var known = field && (text.fields[field] ||
                          (field.indexOf("attribute[") === 0 && text.fields.attribute));
    errorPlace(field).textContent = known || (error && error.message) || text.offline;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    form.querySelectorAll("[data-error-for], #form-error").forEach(function (place) {
      place.textContent = "";
    });
    var questions = chosen();
    var names = ["category", "description", "lon", "lat", "crs", "reporter_name",
                 "reporter_phone"];
    var headers = {Accept: "application/json"};
    var body = new FormData();
    names.forEach(function (name) {
      var value = form.elements[name].value.trim();
      if (value !== "") { body.append(name, value); }
    });
    // A category's answers travel as JSON text beside the photo.
    if (questions) { body.append("attributes", JSON.stringify(answers(questions))); }
    if (fields.photo.files.length) { body.append("photo", fields.photo.files[0]); }
    if (config.csrf) { headers["X-CSRF-Token"] = config.csrf; }
    send.disabled = true;
    send.textContent = text.sending;
    fetch(config.api, {method: "POST", body: body, headers: headers, credentials: "same-origin"})
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (answer) {
          if (!response.ok) { showError(response.status, answer.error); return; }
          if (!answer.work_order_id) {
            document.getElementById("form-error").textContent = text.outside;
            return;
          }
          window.location.assign(config.status_url + "/" + answer.work_order_id +
                                 (answer.outcome === "attached" ? "?joined=1" : ""));
        });
      })
      .catch(function () { document.getElementById("form-error").textContent = text.offline; })
      .finally(function () {
        send.disabled = false;
        send.textContent = send.dataset.label;
      });
  });
  send.dataset.label = send.textContent;
  chosen();
})();
