/* gridmap's measuring tool: click points on the map for the length of the line through
 * them and, from three points on, the area they enclose (on the sphere).
 *
 * It stands in for leaflet-measure, which compiles its templates with `new Function`
 * and so cannot run under gridmap's Content-Security-Policy (no 'unsafe-eval'). It
 * builds its control from DOM nodes and sets every text with textContent. */
(function () {
  "use strict";

  var EARTH_RADIUS = 6378137;  // m, as Leaflet's CRS.Earth
  var COLOUR = "#ff7f00";

  // Area of a ring on the sphere (m²): the formula Leaflet.draw's geodesicArea uses.
  function ringArea(points) {
    var rad = Math.PI / 180, sum = 0;
    for (var i = 0; i < points.length; i++) {
      var a = points[i], b = points[(i + 1) % points.length];
      sum += (b.lng - a.lng) * rad * (2 + Math.sin(a.lat * rad) + Math.sin(b.lat * rad));
    }
    return Math.abs(sum * EARTH_RADIUS * EARTH_RADIUS / 2);
  }

  function metres(m) {
    return m >= 1000 ? (m / 1000).toFixed(2) + " km" : Math.round(m) + " m";
  }

  function squareMetres(a, hectares) {
    return a >= 10000 ? (a / 10000).toFixed(2) + " " + hectares : Math.round(a) + " m²";
  }

  L.Control.GridmapMeasure = L.Control.extend({
    // The words of the control, in the page's language (set by layers.base.Measure).
    options: {position: "topleft", messages: {
      button: "测", title: "测量距离和面积", start: "在地图上依次点选各点；再点“测”结束",
      length: "长度", area: "面积", hectares: "公顷"}},

    onAdd: function (map) {
      var box = L.DomUtil.create("div", "leaflet-bar leaflet-control leaflet-control-measure");
      var button = L.DomUtil.create("a", "gridmap-measure-toggle", box);
      button.href = "#";
      button.setAttribute("role", "button");
      button.title = this.options.messages.title;
      button.textContent = this.options.messages.button;
      this._readout = L.DomUtil.create("div", "gridmap-measure-readout", box);
      this._readout.hidden = true;
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.on(button, "click", function (e) {
        L.DomEvent.preventDefault(e);
        if (this._active) { this._stop(); } else { this._start(); }
      }, this);
      this._drawn = L.layerGroup();
      this._points = [];
      return box;
    },

    onRemove: function () { this._stop(); },

    _start: function () {
      this._active = true;
      this._points = [];
      this._drawn.addTo(this._map);
      this._map.on("click", this._add, this);
      this._map.getContainer().style.cursor = "crosshair";
      this._readout.hidden = false;
      this._readout.textContent = this.options.messages.start;
    },

    _stop: function () {
      this._active = false;
      this._map.off("click", this._add, this);
      this._drawn.clearLayers();
      this._map.removeLayer(this._drawn);
      this._map.getContainer().style.cursor = "";
      this._readout.hidden = true;
    },

    _add: function (e) {
      this._points.push(e.latlng);
      var points = this._points, map = this._map, length = 0;
      this._drawn.clearLayers();
      if (points.length > 2) {
        L.polygon(points, {color: COLOUR, weight: 1, fillOpacity: 0.1, interactive: false})
          .addTo(this._drawn);
      }
      L.polyline(points, {color: COLOUR, weight: 3, interactive: false}).addTo(this._drawn);
      points.forEach(function (p) {
        L.circleMarker(p, {radius: 3, color: COLOUR, interactive: false}).addTo(this._drawn);
      }, this);
      for (var i = 1; i < points.length; i++) { length += map.distance(points[i - 1], points[i]); }
      var words = this.options.messages;
      var lines = [words.length + " " + metres(length)];
      if (points.length > 2) {
        lines.push(words.area + " " + squareMetres(ringArea(points), words.hectares));
      }
      this._readout.textContent = lines.join(" · ");
    }
  });
})();
