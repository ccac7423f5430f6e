"""What every report shares: the page, its style, the directory it is written to, the data it reads."""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tradeguard.errors import InvalidConfig
from tradeguard.trace import Trace

__all__ = ["DATA_FILE", "REPORT_FILE"]

REPORT_FILE = "index.html"
"""The page each report writes into its directory."""
DATA_FILE = "report.json"
"""The report's data, beside the page (the ``--json`` form)."""

_OWN_CHARTS = ("distribution.png", "equity-*.png", "market-*.png")
"""The file names of the charts a report writes (and removes from an earlier report)."""
_MAX_DETAILED = 8
"""Failures (or findings) shown in full, each with its own chart; the table lists all."""
_MAX_VIOLATIONS = 5
"""Violations shown per failing invariant (the table and report.json have the count)."""

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
h3{font-size:1.05em;margin-top:1.5em}
.verdict{font-size:1.25em;font-weight:bold;padding:.6em 1em;border-radius:6px;margin:1em 0}
.verdict.pass{background:#e3f4e6;color:#14532d;border:1px solid #86c597}
.verdict.fail{background:#fde7e7;color:#7f1d1d;border:1px solid #e59a9a}
.meta{color:#555;font-size:.92em}.explain{color:#444}
table{border-collapse:collapse;width:100%;font-size:.9em;margin:.8em 0}
th,td{border:1px solid #ddd;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{font-weight:bold;white-space:nowrap}.s-pass{color:#15803d}.s-fail{color:#b91c1c}
.s-na{color:#6b7280}.s-warn{color:#b45309}
code,pre{font-family:SFMono-Regular,Consolas,Menlo,monospace;font-size:.85em}
pre{background:#f7f7f7;border:1px solid #e5e5e5;padding:.6em;overflow-x:auto;white-space:pre}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.5em 0}
.small{font-size:.85em;color:#555}footer{margin-top:3em;color:#777;font-size:.85em}
"""

_STATUS_CLASS = {
    "pass": "s-pass",
    "fail": "s-fail",
    "FAIL": "s-fail",
    "found": "s-fail",
    "error": "s-fail",
    "warning": "s-warn",
    "warn": "s-warn",
    "not-applicable": "s-na",
    "not found": "s-pass",
    "ignored": "s-na",
    "no violation seen": "s-pass",
}


# --------------------------------------------------------------------------- page
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


class _Page:
    """One report page: a title, a verdict, then sections of explanation, tables and charts."""

    def __init__(self, directory: Path, title: str) -> None:
        self.directory = directory
        self.title = title
        self.parts: list[str] = []
        self.images: list[str] = []

    def verdict(self, passed: bool, text: str) -> None:
        cls = "pass" if passed else "fail"
        self.parts.append(f'<div class="verdict {cls}" id="verdict">{"PASS" if passed else "FAIL"}: {_e(text)}</div>')

    def meta(self, lines: Sequence[str]) -> None:
        self.parts.append('<p class="meta">' + "<br>".join(_e(s) for s in lines) + "</p>")

    def section(self, heading: str, explain: str, anchor: str = "", level: int = 2) -> None:
        ident = f' id="{_e(anchor)}"' if anchor else ""
        self.parts.append(f"<h{level}{ident}>{_e(heading)}</h{level}>")
        if explain:
            self.parts.append(f'<p class="explain">{_e(explain)}</p>')

    def text(self, text: str, cls: str = "") -> None:
        attr = f' class="{cls}"' if cls else ""
        self.parts.append(f"<p{attr}>{_e(text)}</p>")

    def pre(self, text: str) -> None:
        self.parts.append(f"<pre>{_e(text)}</pre>")

    def table(self, head: Sequence[str], rows: Sequence[Sequence[Any]], *, cls: str = "",
              status_col: int | None = None, num_cols: Sequence[int] = ()) -> None:
        out = [f'<table class="{cls}">' if cls else "<table>", "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
        for row in rows:
            cells = []
            for i, cell in enumerate(row):
                if i == status_col:
                    c = _STATUS_CLASS.get(str(cell), "")
                    cells.append(f'<td class="status {c}">{_e(cell)}</td>')
                elif i in num_cols:
                    cells.append(f'<td class="num">{_e(cell)}</td>')
                else:
                    cells.append(f"<td>{_e(cell)}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</table>")
        self.parts.append("\n".join(out))

    def image(self, name: str, alt: str, draw: Callable[[Path], None]) -> None:
        """Draw a chart into ``name`` (a PNG in the report's directory) and show it."""
        draw(self.directory / name)
        self.images.append(name)
        self.parts.append(f'<img src="{_e(name)}" alt="{_e(alt)}">')

    def render(self, footer: str) -> str:
        body = "\n".join(self.parts)
        return (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(self.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{_e(self.title)}</h1>\n{body}\n<footer>{_e(footer)}</footer>\n</body>\n</html>\n"
        )


def _prepare(directory: str | os.PathLike[str]) -> Path:
    from tradeguard._plots import require_matplotlib

    require_matplotlib()
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise InvalidConfig(
            f"report directory {str(path)!r} is a file; give a directory (it is created if missing)."
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidConfig(f"cannot create the report directory {str(path)!r}: {exc}.") from None
    for pattern in _OWN_CHARTS:  # an earlier report's charts must not linger beside this one
        for old in path.glob(pattern):
            old.unlink()
    return path


def _finish(page: _Page, data: Mapping[str, Any], what: str) -> Path:
    from tradeguard import __version__

    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    footer = (
        f"{what} written by tradeguard {__version__} on {now}. The data behind this page is "
        f"{DATA_FILE}, beside it (the command's --json output)."
    )
    (page.directory / DATA_FILE).write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    out = page.directory / REPORT_FILE
    out.write_text(page.render(footer), encoding="utf-8")
    return out


def _as_data(report: Any, what: str, required: Sequence[str]) -> dict[str, Any]:
    """The report's JSON form, from the object or from the dict itself."""
    if isinstance(report, Mapping):
        data = dict(report)
    else:
        method = getattr(report, "as_dict", None)
        if not callable(method):
            raise InvalidConfig(
                f"report={type(report).__name__} object; expected a {what} or its JSON form "
                "(a dict from as_dict() or --json)."
            )
        data = dict(method())
    missing = [k for k in required if k not in data]
    if missing:
        raise InvalidConfig(
            f"the report is missing {', '.join(repr(k) for k in missing)}; expected a {what} or "
            "its JSON form (as_dict(), or the command's --json output)."
        )
    return data



def _pct(x: float) -> str:
    return f"{x:.1%}"


def _money(minor: int, unit: float) -> str:
    decimals = max(0, -math.floor(math.log10(unit) + 1e-9)) if unit > 0 else 2
    return f"{minor * unit:,.{decimals}f}"


def _counts_to_shares(names: Sequence[str], actions: Sequence[str]) -> list[float]:
    n = len(actions)
    return [sum(a == name for a in actions) / n if n else 0.0 for name in names]


def _distribution_of(page: _Page, name: str, trace: Trace, title: str) -> None:
    from tradeguard._plots import distribution_png

    names = list(trace.meta.action_names)
    predicted = [trace.meta.action_name(r.predicted) for r in trace.records]
    executed = [trace.meta.action_name(r.executed) for r in trace.records]
    rejected = sum(bool(r.rejected) for r in trace.records) / max(1, len(trace.records))
    page.image(
        name,
        f"{title}: predicted vs executed action distribution",
        lambda p: distribution_png(
            p, names, _counts_to_shares(names, predicted), _counts_to_shares(names, executed),
            rejected=rejected, title=title, total=len(trace.records),
        ),
    )
