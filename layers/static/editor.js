/* gridmap's grid editor: reshape (Geoman, snapping to neighbours), split along a drawn
 * line, merge selected grids; every change goes through the API with If-Match, and
 * the validator's refusal is drawn on the map with its reason.
 *
 * No token here: the planner signs in at /signin and the browser sends its HttpOnly
 * session cookie; writes carry the session's CSRF token (options.csrf). Names from
 * the data are only ever set as text (textContent, text nodes), never as HTML. */
(function () {
  "use strict";

  function gridmapEditor(map, options) {
    var api = options.api, area = options.area;
    var adjust = document.getElementById("gm-adjust");
    var status = document.getElementById("gm-status");
    var who = document.getElementById("gm-who");
    var signin = document.getElementById("gm-signin");
    var signout = document.getElementById("gm-signout");
    var words = options.messages;  // in the page's language
    if (options.who) {
      who.textContent = words.signedIn + " " + options.who.name + "（" + options.who.role + "）";
      signout.hidden = false;
      signout.addEventListener("click", function () {
        fetch(options.signout, {method: "POST", headers: {"X-CSRF-Token": options.csrf}})
          .then(function () { window.location.reload(); });
      });
    } else {
      who.textContent = words.viewOnly;
      signin.href = options.signin;
      signin.hidden = false;
    }

    var grids = L.featureGroup().addTo(map);
    var findings = L.featureGroup().addTo(map);
    var selected = {};

    // A tooltip's content as a text node: Leaflet would parse a string as HTML.
    function textBox(text) {
      var box = document.createElement("span");
      box.textContent = text;
      return box;
    }

    function say(text, bad) {
      status.textContent = text;
      status.className = bad ? "gm-bad" : "gm-good";
    }

    function headers(version) {
      var h = {"Content-Type": "application/json", "X-CSRF-Token": options.csrf || ""};
      if (version !== undefined) { h["If-Match"] = '"' + version + '"'; }
      return h;
    }

    function style(feature) {
      var kind = feature.properties.kind;
      var chosen = selected[feature.id] !== undefined;
      return {color: chosen ? "#ff7f00" : "#222", weight: chosen ? 4 : 2,
              fillColor: options.colours[kind] || "#999",
              fillOpacity: kind === "master" ? 0 : 0.3};
    }

    function load() {
      return fetch(api + "/grids?limit=1000&area=" + encodeURIComponent(area))
        .then(function (r) { return r.json(); })
        .then(function (collection) {
          grids.clearLayers();
          L.geoJSON(collection, {
            filter: function (f) { return f.properties.kind !== "master"; },
            style: style,
            onEachFeature: function (feature, layer) {
              layer.gridId = feature.id;
              layer.version = feature.properties.version;
              layer.bindTooltip(textBox(feature.properties.code + " " + feature.properties.name));
              layer.on("pm:edit", function () { reshape(layer); });
              layer.on("click", function (e) {
                if (!e.originalEvent.shiftKey) { return; }
                if (selected[layer.gridId] !== undefined) { delete selected[layer.gridId]; }
                else { selected[layer.gridId] = layer.version; }
                layer.setStyle(style(feature));
              });
              grids.addLayer(layer);
            }
          });
        });
    }

    function answer(response, done) {
      if (response.ok) {
        findings.clearLayers();
        say(done);
        return load();
      }
      return response.json().then(function (problem) {
        findings.clearLayers();
        (problem.errors || []).forEach(function (e) {
          if (e.geometry) {
            L.geoJSON(e.geometry, {style: {color: "#d7191c", weight: 3, fillOpacity: 0.4}})
              .bindTooltip(textBox(e.reason || e.kind)).addTo(findings);
          }
        });
        say(words.refused + " (" + response.status + "): " + (problem.detail || problem.title), true);
        return load();
      });
    }

    function reshape(layer) {
      var geometry = layer.toGeoJSON().geometry;
      fetch(api + "/grids/" + layer.gridId + "?adjust_neighbours=" + adjust.checked, {
        method: "PATCH", headers: headers(layer.version),
        body: JSON.stringify({geometry: geometry})
      }).then(function (r) { return answer(r, words.saved); });
    }

    map.on("pm:create", function (e) {
      if (e.shape !== "Line") { return; }
      var line = e.layer.toGeoJSON().geometry;
      map.removeLayer(e.layer);
      var target = null;
      grids.eachLayer(function (layer) {
        if (selected[layer.gridId] !== undefined) { target = layer; }
      });
      if (!target) { say(words.selectFirst, true); return; }
      fetch(api + "/grids/" + target.gridId + "/split", {
        method: "POST", headers: headers(target.version),
        body: JSON.stringify({line: line})
      }).then(function (r) { selected = {}; return answer(r, words.split); });
    });

    document.getElementById("gm-merge").addEventListener("click", function () {
      var items = Object.keys(selected).map(function (id) {
        return {id: Number(id), version: selected[id]};
      });
      fetch(api + "/grids/merge", {
        method: "POST", headers: headers(), body: JSON.stringify({grids: items})
      }).then(function (r) { selected = {}; return answer(r, words.merged); });
    });

    // For the page's own scripts (and its tests): the grids and the drawn findings.
    window.gridmapEditorLayers = {map: map, grids: grids, findings: findings};
    map.pm.setLang(options.lang === "en" ? "en" : "zh");  // Geoman's words: the page's language
    map.pm.setGlobalOptions({snappable: true, snapDistance: 15, allowSelfIntersection: false});
    map.pm.addControls({position: "topleft", drawMarker: false, drawCircleMarker: false,
      drawPolygon: false, drawRectangle: false, drawCircle: false, drawText: false,
      drawPolyline: true, editMode: true, dragMode: false, cutPolygon: false,
      removalMode: false, rotateMode: false});
    return load();
  }

  window.gridmapEditor = gridmapEditor;
})();
