/* dbtune report: the findings filters and the charts. Plain JavaScript, no framework; nothing runs per
   row at load: a filter toggles one class on its table, and the shown count is made on a change only. */
(function () {
  "use strict";
  function setupFilters(box) {
    var table = document.getElementById(box.getAttribute("data-table"));
    var inputs = box.querySelectorAll("input[data-hide]");
    var shown = box.querySelector(".shown");
    function update() {
      var rows = table.querySelectorAll(".chunk > .f");
      var hidden = {};
      inputs.forEach(function (input) {
        var name = input.getAttribute("data-hide");
        table.classList.toggle("hide-" + name, !input.checked);
        if (!input.checked) { hidden[name] = true; }
      });
      var n = 0;
      for (var i = 0; i < rows.length; i++) {
        var c = rows[i].className.split(" ");
        if (!hidden[c[0]] && !hidden[c[1]]) { n++; }
      }
      shown.textContent = n + " of " + rows.length + " shown";
    }
    inputs.forEach(function (input) { input.addEventListener("change", update); });
  }
  /* A finding's evidence and fix SQL, from the table's JSON, built as text nodes when first opened. */
  function setupDetails(data) {
    var table = document.getElementById(data.getAttribute("data-table"));
    var details = null;
    function el(tag, text, cls) {
      var e = document.createElement(tag);
      if (text !== undefined) { e.textContent = text; }
      if (cls) { e.className = cls; }
      return e;
    }
    table.addEventListener("toggle", function (event) {
      var d = event.target;
      if (!d.open || d.getAttribute("data-filled")) { return; }
      details = details || JSON.parse(data.textContent);
      var rows = table.querySelectorAll(".chunk > .f");
      var f = details[Array.prototype.indexOf.call(rows, d.parentNode)];
      var body = el("div", undefined, "body");
      if (f.evidence.length) {
        var t = el("table", undefined, "evidence");
        f.evidence.forEach(function (kv) {
          var tr = el("tr");
          tr.appendChild(el("th", kv[0]));
          tr.appendChild(el("td", kv[1]));
          t.appendChild(tr);
        });
        body.appendChild(t);
      }
      if (f.fix.length) { body.appendChild(el("pre", f.fix.join("\n"), "sql")); }
      if (!f.evidence.length && !f.fix.length) { body.appendChild(el("p", "no evidence and no fix", "muted")); }
      d.appendChild(body);
      d.setAttribute("data-filled", "1");
    }, true);
  }
  /* Each chart is drawn when it first comes into view; plotly.js, embedded as text, runs then. */
  function drawCharts() {
    var data = document.getElementById("dbtune-charts");
    if (!data) { return; }
    var charts = {};
    JSON.parse(data.textContent).forEach(function (chart) { charts["chart-" + chart.id] = chart; });
    function plotly() {
      if (typeof Plotly === "undefined") {
        var script = document.createElement("script");
        script.textContent = document.getElementById("dbtune-plotly").textContent;
        document.head.appendChild(script);
      }
      return Plotly;
    }
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (!entry.isIntersecting) { return; }
        observer.unobserve(entry.target);
        var chart = charts[entry.target.id];
        plotly().newPlot(entry.target, chart.figure.data, chart.figure.layout, {displaylogo: false, responsive: true});
      });
    }, {rootMargin: "200px"});
    Object.keys(charts).forEach(function (id) {
      var el = document.getElementById(id);
      if (el) { observer.observe(el); }
    });
  }
  document.querySelectorAll(".filters[data-table]").forEach(setupFilters);
  document.querySelectorAll("script.finding-details").forEach(setupDetails);
  drawCharts();
}());
