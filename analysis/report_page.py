"""The report's page: collects sections, tables, figures and estimates; writes HTML and Markdown.

``index.html`` is self-contained apart from the PNGs beside it (no scripts, no remote assets),
so it opens offline; ``summary.md`` carries the same tables; ``estimates.csv`` the estimates.
"""

from __future__ import annotations

import html
import os
import traceback
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from . import exact_reference as exact
from .load import read_table

__all__ = ["ReportPage", "write_page", "write_atomic"]


class ReportPage:
    """Accumulates sections, tables, figures and missing items; writes the three files."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.sections: list[tuple[str, list]] = []
        self.missing: list[str] = []
        self.estimates: list[dict] = []
        self.traces: list[str] = []

    def section(self, title):
        self.sections.append((title, []))
        return self.sections[-1][1]

    def figure(self, items, name, make, *args, **kwargs):
        path = self.dir / name
        try:
            make(*args, path, **kwargs)
        except Exception as err:  # a figure that cannot be drawn is reported, not fatal
            self.missing.append(f"figure {name}: {type(err).__name__}: {err}")
            path.unlink(missing_ok=True)
            return
        if path.exists() and path.stat().st_size > 0:
            items.append(("figure", name))

    def read(self, out, name, keep=None, empty="no rows", quiet=False, **kw) -> pd.DataFrame:
        """Table ``name`` (through ``keep``, if given), or an empty frame if it cannot be read.

        An unreadable table, or one ``empty`` of rows, is listed as missing unless ``quiet``.
        """
        try:
            frame = read_table(out, name, verify="size", **kw)
            if keep is not None:
                frame = keep(frame)
        except Exception as err:
            if not quiet:
                self.missing.append(f"table `{name}` unreadable: {type(err).__name__}: {err}")
            return pd.DataFrame()
        if frame.empty and not quiet:
            self.missing.append(f"table `{name}`: {empty}")
        return frame

    def guard(self, what: str, fn, *args):
        """``fn(*args)``, or None with the error listed as missing (and its traceback kept)."""
        try:
            return fn(*args)
        except Exception as err:
            self.missing.append(f"{what}: {type(err).__name__}: {err}")
            self.traces.append(traceback.format_exc())
            return None

    def estimate(self, quantity, value, err, exact_value, method):
        z = (value - exact_value) / err if err and np.isfinite(err) and err > 0 else float("nan")
        self.estimates.append({"quantity": quantity, "measured": value, "error": err,
                               "exact": exact_value, "z": z, "method": method})


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``: a reader never
    sees half a page, and a symbolic link at ``path`` is replaced, never written through."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return "nan" if not np.isfinite(v) else f"{v:.6g}"
    return str(v)


def _markdown(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def write_page(rep: ReportPage, out, seconds: float) -> Path:
    """Write index.html, summary.md, estimates.csv (and errors.txt if a section failed)."""
    est = pd.DataFrame(rep.estimates, columns=["quantity", "measured", "error", "exact", "z", "method"])
    write_atomic(rep.dir / "estimates.csv", est.to_csv(index=False))
    md = [f"# rgsweep report: `{out}`", "",
          "Conventions: docs/conventions.md (J = k_B = 1, per-spin e, C, chi; U4 = 1 - <m^4>/3<m^2>^2). "
          f"Exact: Tc = 2/ln(1+sqrt 2) = {exact.TC:.6f}, nu = 1, gamma/nu = 7/4; Kaufman's finite-L c peak.",
          "", "## Estimates against the exact answers", "",
          _markdown(est) if not est.empty else "_no estimate could be computed_", ""]
    body = [f"<h1>rgsweep report</h1><p>dataset: <code>{html.escape(str(out))}</code>; built in {seconds:.1f} s</p>",
            "<h2>Estimates against the exact answers</h2>",
            est.to_html(index=False, float_format=lambda v: f"{v:.6g}") if not est.empty
            else "<p><em>no estimate could be computed</em></p>"]
    for title, items in rep.sections:
        md += [f"## {title}", ""]
        body.append(f"<h2>{html.escape(title)}</h2>")
        for kind, *rest in items:
            if kind == "text":
                md += [rest[0], ""]
                body.append(f"<p>{html.escape(rest[0])}</p>")
            elif kind == "table":
                caption, frame = rest
                md += [f"**{caption}**", "", _markdown(frame), ""]
                body.append(f"<h3>{html.escape(caption)}</h3>"
                            + frame.to_html(index=False, float_format=lambda v: f"{v:.6g}"))
            elif kind == "figure":
                md += [f"![{rest[0]}]({rest[0]})", ""]
                body.append(f'<figure><img src="{html.escape(rest[0])}" alt="{html.escape(rest[0])}" '
                            'style="max-width:100%"></figure>')
    missing = rep.missing or ["nothing"]
    md += ["## Missing or not computed", ""] + [f"- {m}" for m in missing] + ["", f"Report built in {seconds:.1f} s."]
    body.append("<h2>Missing or not computed</h2><ul>" + "".join(f"<li>{html.escape(m)}</li>" for m in missing)
                + "</ul>")
    write_atomic(rep.dir / "summary.md", "\n".join(md) + "\n")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>rgsweep report</title><style>"
            "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
            "table{border-collapse:collapse;font-size:12px;margin-bottom:1em}"
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
    index = rep.dir / "index.html"
    write_atomic(index, page)
    errors = rep.dir / "errors.txt"
    if rep.traces:  # for whoever debugs a section that could not be computed
        write_atomic(errors, "\n".join(rep.traces))
    else:
        errors.unlink(missing_ok=True)
    return index
