"""The page around the report: HTML skeleton, style and the script that embeds each chart.

No address appears here: no fonts, styles or scripts from the web; the page works offline.
The layout works from a phone (about 390 px) to a wide screen: tables scroll sideways inside
their own box, never the page, and every chart is sized to its box when drawn (and redrawn
when the window changes width).
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}}</title>
<style>{{css}}</style>
</head>
<body>
<header><h1>{{title}}</h1><details class="runs-details"><summary>runs</summary>{{details}}
</details><nav>{{nav}}</nav></header>
<main>
{{body}}
</main>
<footer>Made by <code>panopticon report</code>. Synthetic citizens, simulated systems; the
page is self-contained and makes no request.</footer>
{{script}}
</body>
</html>
"""

CSS = """
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1d1d1f; background: #fafafa; line-height: 1.45; overflow-wrap: break-word; }
header { background: #1d1d1f; color: #fafafa; padding: 1rem clamp(.75rem, 3vw, 2rem); }
header h1 { margin: 0 0 .5rem; font-size: 1.35rem; overflow-wrap: anywhere; }
header details { font-size: .8rem; color: #c8c8c8; margin-bottom: .5rem; }
header details p { margin: .2rem 0; overflow-wrap: anywhere; }
nav { display: flex; flex-wrap: wrap; gap: .2rem 1rem; }
nav a { color: #c9d7ff; font-size: .9rem; text-decoration: none; }
main { padding: 0 clamp(.75rem, 3vw, 2rem) 2rem; max-width: 1400px; }
section { margin: 2rem 0; padding-bottom: 1rem; border-bottom: 1px solid #ddd; min-width: 0; }
h2 { font-size: 1.25rem; }
h3 { font-size: 1rem; margin: .25rem 0 0; overflow-wrap: anywhere; }
h4 { font-size: .95rem; margin: .75rem 0 .25rem; }
.details { color: #666; font-size: .75rem; margin: 0 0 .5rem; overflow-wrap: anywhere; }
ol.findings { padding-left: 1.4rem; max-width: 60rem; font-size: 1.02rem; }
ol.findings li { margin: .35rem 0; }
.table-wrap { max-width: 100%; overflow-x: auto; margin: .5rem 0;
              -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; font-size: .86rem; }
th, td { border: 1px solid #ddd; padding: .2rem .45rem; text-align: left; vertical-align: top; }
th { background: #eee; font-weight: 600; min-width: 5.5em; }
table.numbers td + td { text-align: right; font-variant-numeric: tabular-nums; }
td small { color: #555; }
.runs { display: grid; gap: 1.5rem; align-items: start;
        grid-template-columns: repeat(auto-fit, minmax(min(100%, 22rem), 1fr)); }
.run { min-width: 0; }
.run.wide { margin: 1rem 0; }
.chart { margin: 1rem 0; min-height: 60px; max-width: 100%; overflow-x: auto; }
.note { color: #8a5a00; font-style: italic; }
.explain { color: #555; font-size: .9rem; max-width: 60rem; }
.story { max-width: 60rem; }
.story pre { background: #fff; border: 1px solid #ddd; padding: .5rem; font-size: .78rem;
             white-space: pre-wrap; overflow-wrap: anywhere; max-height: 28rem;
             overflow-y: auto; }
.story summary { cursor: pointer; color: #333; font-size: .85rem; }
code { overflow-wrap: anywhere; }
footer { padding: 1rem clamp(.75rem, 3vw, 2rem); color: #666; font-size: .8rem; }
"""

# One vegaEmbed call per chart, sized to its box; a failure is written to the console (the
# browser test fails on it) and shown in place of the chart. Small multiples (a facet) get one
# column on a narrow screen; a single view fits its box, axes included.
SCRIPT = """
(function () {
  var specs = {{specs}};
  var drawn = {};
  function clamp(x, lo, hi) { return Math.max(lo, Math.min(hi, x)); }
  var panel = 0;  // the width of one panel of the last spec fitted
  function fit(spec, w, over) {
    if (spec.vconcat) {
      spec.vconcat.forEach(function (s) { fit(s, w, over); });
      return spec;
    }
    if (spec.facet && spec.spec) {
      var cols = w < 640 ? 1 : (spec.columns || 1);
      spec.columns = cols;
      spec.spec.width = clamp(Math.floor((w - 20) / cols) - 100 - over / cols, 80, 560);
      panel = Math.max(panel, spec.spec.width);
      return spec;
    }
    var y = spec.encoding && spec.encoding.y;
    if (y && (y.type === "nominal" || y.type === "ordinal")) {
      spec.width = clamp(w - 200 - over, 80, 900);  // a band scale cannot be fitted: leave
      panel = Math.max(panel, spec.width);
    } else {                                         // room for its labels
      spec.width = clamp(w - 10 - over, 160, 900);
      panel = Math.max(panel, spec.width);
      spec.autosize = {type: "fit-x", contains: "padding"};
    }
    return spec;
  }
  function draw(id, over) {
    var el = document.getElementById(id);
    var w = el.parentElement.clientWidth || 600;
    if (!over && drawn[id] === w) { return; }
    drawn[id] = w;
    panel = 0;
    var spec = fit(JSON.parse(JSON.stringify(specs[id])), w, over || 0);
    var limit = Math.max(80, Math.min(w - 40, panel));
    spec.config = spec.config || {};  // long titles, labels and legends are cut or stacked,
    spec.config.title = Object.assign({}, spec.config.title, {limit: limit});  // never wider
    spec.config.header = Object.assign({}, spec.config.header, {labelLimit: limit});
    spec.config.legend = Object.assign({}, spec.config.legend, {labelLimit: limit - 40});
    if (w < 640) { spec.config.legend.columns = 1; }
    vegaEmbed(el, spec, {actions: false, renderer: "svg"}).then(function () {
      var svg = el.querySelector("svg");
      var excess = svg ? svg.getBoundingClientRect().width - w : 0;
      if (excess > 1 && !over) { draw(id, excess + 4); return; }  // labels took more room
      el.setAttribute("data-rendered", "true");
    }).catch(function (e) {
      el.textContent = "this chart failed to draw: " + e;
      console.error("chart " + id + ": " + e);
    });
  }
  Object.keys(specs).forEach(function (id) { draw(id, 0); });
  var timer = null;
  window.addEventListener("resize", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { Object.keys(specs).forEach(function (id) {
      draw(id, 0); }); }, 200);
  });
})();
"""
