"""Page assembly: key figures in a header, then sections of charts, tables and text, as one
self-contained HTML file (styles inline, charts as data URIs, no script, no network)."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from alphaline.io import write_text
from alphaline.reporting.charts import svg_data_uri


@dataclass(frozen=True)
class Figure:
    """A key figure in the header: label, value as shown, and an optional note beneath."""

    label: str
    value: str
    note: str = ""
    tone: str = ""  # "good" | "bad" | "" (colour of the value)


@dataclass(frozen=True)
class Chart:
    id: str
    uri: str
    alt: str
    caption: str = ""


@dataclass(frozen=True)
class Table:
    html: Markup
    caption: str = ""


@dataclass(frozen=True)
class Text:
    body: str


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Chart | Table | Text] = field(default_factory=list)
    intro: str = ""


def chart(id: str, fig, alt: str, caption: str = "") -> Chart:
    """A figure rendered to an inline SVG image (the figure is released after)."""
    return Chart(id=id, uri=svg_data_uri(fig), alt=alt, caption=caption)


def pct(v: float, decimals: int = 1) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:+.{decimals}%}"


def num(v: float, decimals: int = 2) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:,.{decimals}f}"


def plain_pct(v: float, decimals: int = 1) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{decimals}%}"


Formatter = Callable[[object], str]
_NUMBER = re.compile(r"^[+\-−]?[\d,]*\.?\d+%?$")


def _cell(value: object, fmt: Formatter | None) -> tuple[str, str]:
    """Text and CSS class of one cell: numbers right-aligned, negatives red."""
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        text = value.strftime("%Y-%m-%d") if value == value.normalize() \
            else value.strftime("%Y-%m-%d %H:%M")
        return text, ""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        default = str(value) if isinstance(value, (int, np.integer)) else num(float(value))
        text = fmt(value) if fmt else default
        cls = "num neg" if value < 0 else "num"
        return text, cls
    if value is None or value is pd.NA or value != value:
        return "", ""
    text = fmt(value) if fmt else str(value)
    if _NUMBER.match(text):  # a figure formatted before it got here: align it as one
        return text, "num neg" if text.startswith(("-", "−")) else "num"
    return text, ""


def table_html(frame: pd.DataFrame, formats: Mapping[str, Formatter] | None = None, *,
               index: bool = True, max_rows: int | None = None) -> Markup:
    """An HTML table with per-column formatters; the index shown as the first column."""
    formats = formats or {}
    f = frame if max_rows is None else frame.tail(max_rows)
    head = ([str(f.index.name or "")] if index else []) + [str(c) for c in f.columns]
    rows = []
    for key, row in f.iterrows():
        cells = [_cell(key, formats.get("__index__"))] if index else []
        cells += [_cell(row[c], formats.get(str(c))) for c in f.columns]
        rows.append(cells)
    return Markup(_TABLE.render(head=head, rows=rows))


def write_page(path, *, title: str, subtitle: str, figures: Sequence[Figure],
               sections: Sequence[Section], footer: str = "") -> None:
    """Render the page to ``path`` atomically: a reader never sees half a report."""
    html = _PAGE.render(title=title, subtitle=subtitle, figures=figures, sections=sections,
                        footer=footer)
    write_text(html, path)


_ENV = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True,
                          undefined=jinja2.StrictUndefined)
_ENV.tests["instance_of_chart"] = lambda b: isinstance(b, Chart)
_ENV.tests["instance_of_table"] = lambda b: isinstance(b, Table)

_TABLE = _ENV.from_string("""<table>
<thead><tr>{% for h in head %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for cells in rows %}<tr>{% for text, cls in cells %}<td{% if cls %} class="{{ cls }}"\
{% endif %}>{{ text }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table>""")

_PAGE = _ENV.from_string("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
:root { --ink:#102a43; --muted:#627d98; --line:#d9e2ec; --bg:#f7f9fb; --blue:#1f4e79;
        --good:#2f7d4f; --bad:#b5475b; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.5 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif;
       color:var(--ink); background:var(--bg); }
header { background:#fff; border-bottom:1px solid var(--line); padding:20px 32px 16px; }
h1 { margin:0; font-size:22px; }
.subtitle { color:var(--muted); margin-top:2px; }
.figures { display:flex; flex-wrap:wrap; gap:10px; margin-top:14px; }
.figure { background:var(--bg); border:1px solid var(--line); border-radius:6px;
          padding:8px 14px; min-width:120px; }
.figure .label { font-size:11px; text-transform:uppercase; letter-spacing:.04em;
                 color:var(--muted); }
.figure .value { font-size:20px; font-weight:600; font-variant-numeric:tabular-nums; }
.figure .value.good { color:var(--good); } .figure .value.bad { color:var(--bad); }
.figure .note { font-size:11px; color:var(--muted); }
nav { padding:8px 32px; font-size:12px; }
nav a { color:var(--blue); margin-right:12px; text-decoration:none; }
main { padding:0 32px 32px; max-width:1200px; }
section { background:#fff; border:1px solid var(--line); border-radius:6px; margin:16px 0;
          padding:14px 20px; }
h2 { font-size:16px; margin:0 0 6px; }
.intro, figcaption { color:var(--muted); font-size:12.5px; }
.caption { margin:12px 0 0; font-weight:600; }
figure.chart { margin:8px 0 14px; }
figure.chart img { width:100%; height:auto; display:block; }
table { border-collapse:collapse; margin:8px 0 14px; font-size:12.5px;
        font-variant-numeric:tabular-nums; }
th { text-align:left; border-bottom:2px solid var(--line); padding:4px 10px;
     color:var(--muted); font-weight:600; }
td { border-bottom:1px solid var(--line); padding:3px 10px; white-space:nowrap; }
td.num { text-align:right; } td.neg { color:var(--bad); }
.table-wrap { overflow-x:auto; max-height:520px; overflow-y:auto; }
footer { color:var(--muted); font-size:11px; padding:0 32px 24px; }
@media print { section { break-inside:avoid; } nav { display:none; } }
</style>
</head>
<body>
<header>
<h1>{{ title }}</h1>
<div class="subtitle">{{ subtitle }}</div>
<div class="figures" id="key-figures">
{% for f in figures %}
<div class="figure"><div class="label">{{ f.label }}</div>
<div class="value {{ f.tone }}">{{ f.value }}</div>
{% if f.note %}<div class="note">{{ f.note }}</div>{% endif %}</div>
{% endfor %}
</div>
</header>
<nav>{% for s in sections %}<a href="#{{ s.id }}">{{ s.title }}</a>{% endfor %}</nav>
<main>
{% for s in sections %}
<section id="{{ s.id }}">
<h2>{{ s.title }}</h2>
{% if s.intro %}<p class="intro">{{ s.intro }}</p>{% endif %}
{% for b in s.blocks %}
{% if b is instance_of_chart %}
<figure class="chart" id="chart-{{ b.id }}" data-chart="{{ b.id }}">
<img src="{{ b.uri }}" alt="{{ b.alt }}">
{% if b.caption %}<figcaption>{{ b.caption }}</figcaption>{% endif %}
</figure>
{% elif b is instance_of_table %}
{% if b.caption %}<p class="intro caption">{{ b.caption }}</p>{% endif %}
<div class="table-wrap">{{ b.html }}</div>
{% else %}
<p>{{ b.body }}</p>
{% endif %}
{% endfor %}
</section>
{% endfor %}
</main>
<footer>{{ footer }}</footer>
</body>
</html>
""")
