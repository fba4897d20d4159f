"""The page around the report: HTML skeleton, style and the script that embeds each chart.

No address appears here: no fonts, styles or scripts from the web; the page works offline.
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
<header><h1>{{title}}</h1><nav>{{nav}}</nav></header>
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
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1d1d1f; background: #fafafa; line-height: 1.45; }
header { background: #1d1d1f; color: #fafafa; padding: 1rem 2rem; }
header h1 { margin: 0 0 .5rem; font-size: 1.4rem; word-break: break-all; }
nav a { color: #c9d7ff; margin-right: 1rem; font-size: .9rem; text-decoration: none; }
main { padding: 0 2rem 2rem; max-width: 1400px; }
section { margin: 2rem 0; padding-bottom: 1rem; border-bottom: 1px solid #ddd; }
h2 { font-size: 1.25rem; }
h3 { font-size: 1rem; margin: .25rem 0; word-break: break-all; }
h4 { font-size: .95rem; margin: .75rem 0 .25rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .88rem; }
th, td { border: 1px solid #ddd; padding: .2rem .5rem; text-align: left; }
table.numbers td + td { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #eee; }
.runs { display: flex; gap: 1.5rem; flex-wrap: wrap; align-items: flex-start; }
.run { flex: 1 1 380px; min-width: 0; overflow-x: auto; }
.chart { margin: 1rem 0; min-height: 60px; overflow-x: auto; }
.note { color: #8a5a00; font-style: italic; }
.explain { color: #555; font-size: .9rem; max-width: 60rem; }
.story pre { background: #fff; border: 1px solid #ddd; padding: .5rem; font-size: .78rem;
             white-space: pre-wrap; max-height: 28rem; overflow-y: auto; }
footer { padding: 1rem 2rem; color: #666; font-size: .8rem; }
"""

# One vegaEmbed call per chart; a failure is written to the console (the browser test fails on it)
# and shown in place of the chart.
SCRIPT = """
(function () {
  var specs = {{specs}};
  Object.keys(specs).forEach(function (id) {
    var el = document.getElementById(id);
    vegaEmbed(el, specs[id], {actions: false, renderer: "svg"}).then(function () {
      el.setAttribute("data-rendered", "true");
    }).catch(function (e) {
      el.textContent = "this chart failed to draw: " + e;
      console.error("chart " + id + ": " + e);
    });
  });
})();
"""
