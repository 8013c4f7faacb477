"""The report's page: collects sections, tables, figures and estimates; writes HTML and Markdown.

``index.html`` is self-contained apart from the PNGs beside it (no scripts, no remote assets),
so it opens offline; ``summary.md`` carries the same tables; ``estimates.csv`` the estimates.
"""

from __future__ import annotations

import html
import math
import os
import re
import traceback
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from . import exact_reference as exact
from .load import read_table

__all__ = ["ReportPage", "write_page", "write_atomic", "value_error", "paired", "CAPTIONS", "FOLD_ROWS"]

#: Tables longer than this are folded (``<details>``) in both index.html and summary.md.
FOLD_ROWS = 20

#: The caption under each figure, by file name (``_L<L>`` and the suffix removed).
CAPTIONS = {
    "thermodynamics": "Energy, |magnetisation|, heat capacity, susceptibility and Binder cumulant per "
                      "spin against T for each L (points: Monte Carlo with error bars; lines: Kaufman's "
                      "exact finite-L energy and heat capacity; dotted: Onsager's Tc).",
    "binder": "Binder cumulant U4 against T per L (points with bootstrap errors; curves: "
              "multiple-histogram reweighting); successive sizes cross near Tc, marked with their errors.",
    "peaks": "Heat capacity and susceptibility near their maxima per L: measured points, the "
             "reweighted curve, and the peak position with its bootstrap error.",
    "finite_size": "Left: peak temperatures against 1/L with the fit Tc + a L^(-1/nu) (dotted: exact "
                   "Tc). Right: the susceptibility maximum against L on log axes, with the fitted power "
                   "law and the exact slope gamma/nu = 7/4 (dashed).",
    "free_energy": "Free energy per spin from thermodynamic integration minus Kaufman's exact value, "
                   "per L, with the error of the integration grid.",
    "spectra": "Eigenvalues of W W^T of the trained RBMs (final checkpoint) against the "
               "Marchenko-Pastur law fitted to their bulk.",
    "receptive_fields": "Receptive fields: the weights of a few hidden units on the L x L lattice "
                        "(red positive, blue negative), at low, critical and high T.",
    "rg_flow": "RG flows: effective temperature after each block-spin step, each RBM-flow step and "
               "each stacked layer, against the starting temperature (diagonal: no flow).",
    "rg_flow_fields": "Receptive fields of the stacked RBM layers projected onto the lattice: how far "
                      "each layer reaches.",
}


def value_error(value, err) -> str:
    """``2.25584, 0.00718 -> '2.2558(72)'``: the error to two significant digits, in units of the
    value's last digit; a missing or zero error prints the value alone."""
    if value is None or not np.isfinite(value):
        return "nan"
    if err is None or not np.isfinite(err) or err <= 0:
        return f"{value:.6g}"
    if not 1e-9 <= err < 1e6 or abs(value) >= 1e9:  # beyond fixed notation: scientific, both
        return f"{value:.4g} ± {err:.2g}"
    decimals = max(0, 1 - math.floor(math.log10(err)))
    digits = round(err * 10 ** decimals)
    if digits >= 100:  # rounding reached a third digit (0.0995 -> 100): one decimal fewer
        decimals, digits = max(0, decimals - 1), round(err * 10 ** max(0, decimals - 1))
    return f"{value:.{decimals}f}({digits})"


def paired(frame: pd.DataFrame) -> pd.DataFrame:
    """Each column ``x`` with a partner ``x_err`` (``measured`` with ``error``, ``value`` with
    ``err`` or ``error``) as one column of ``value(error)`` strings; other columns as they are."""
    out = frame.copy()
    for col in list(frame.columns):
        partner = {"measured": "error", "value": "err" if "err" in frame.columns else "error"}.get(
            col, f"{col}_err")
        if partner in frame.columns and pd.api.types.is_numeric_dtype(frame[col]):
            out[col] = [value_error(v, e) for v, e in zip(frame[col], frame[partner])]
            out = out.drop(columns=partner)
    return out


def _html_text(text: str) -> str:
    """Prose for the page: escaped, with Markdown's `code` as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


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

    def figure(self, items, name, make, *args, caption: str | None = None, **kwargs):
        path = self.dir / name
        try:
            make(*args, path, **kwargs)
        except Exception as err:  # a figure that cannot be drawn is reported, not fatal
            self.missing.append(f"figure {name}: {type(err).__name__}: {err}")
            path.unlink(missing_ok=True)
            return
        if path.exists() and path.stat().st_size > 0:
            stem = re.sub(r"_L\d+$", "", path.stem)
            items.append(("figure", name, caption or CAPTIONS.get(stem, "")))

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


def _fmt(v, column: str = ""):
    """A table cell: a missing or non-finite number as "–", a z-score to 2 decimals, another
    number to 4 significant figures; anything else as it is."""
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "–"
        if column == "z" or column.endswith("_z"):
            return f"{v:.2f}"
        return f"{v:.4g}"
    return str(v)


def _cells(frame: pd.DataFrame) -> pd.DataFrame:
    frame = paired(frame)
    return pd.DataFrame({c: [_fmt(v, str(c)) for v in frame[c]] for c in frame.columns}, columns=frame.columns)


def _markdown(frame: pd.DataFrame) -> str:
    frame = _cells(frame)
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _html_table(frame: pd.DataFrame) -> str:
    return _cells(frame).to_html(index=False)


def _extra_formats(directory: Path, name: str) -> str:
    """Links to the same figure in the other formats written beside the PNG."""
    stem = Path(name).stem
    links = [f'<a href="{html.escape(stem)}.{ext}">{ext}</a>' for ext in ("svg", "pdf")
             if (directory / f"{stem}.{ext}").exists()]
    return f" ({' · '.join(links)})" if links else ""


def write_page(rep: ReportPage, out, seconds: float) -> Path:
    """Write index.html, summary.md, estimates.csv (and errors.txt if a section failed)."""
    est = pd.DataFrame(rep.estimates, columns=["quantity", "measured", "error", "exact", "z", "method"])
    write_atomic(rep.dir / "estimates.csv", est.to_csv(index=False))
    md = [f"# rgsweep report: `{out}`", "",
          "Conventions: docs/conventions.md (J = k_B = 1, per-spin e, C, chi; U4 = 1 - <m^4>/3<m^2>^2). "
          f"Exact: Tc = 2/ln(1+sqrt 2) = {exact.TC:.6f}, nu = 1, gamma/nu = 7/4; Kaufman's finite-L c peak.",
          "", "## Estimates against the exact answers", "",
          _markdown(est) if not est.empty else "_no estimate could be computed_", "",
          "z = (measured - exact) / error; values are shown as value(error), the error in units "
          "of the last digit.", ""]
    body = [f"<h1>rgsweep report</h1><p>dataset: <code>{html.escape(str(out))}</code>; built in {seconds:.1f} s</p>",
            "<h2>Estimates against the exact answers</h2>",
            _html_table(est) if not est.empty else "<p><em>no estimate could be computed</em></p>",
            "<p>z = (measured &minus; exact) / error; values are shown as value(error), the error in "
            "units of the last digit.</p>"]
    for title, items in rep.sections:
        md += [f"## {title}", ""]
        body.append(f"<h2>{html.escape(title)}</h2>")
        for kind, *rest in items:
            if kind == "text":
                md += [rest[0], ""]
                body.append(f"<p>{_html_text(rest[0])}</p>")
            elif kind == "table":
                caption, frame = rest
                if len(frame) > FOLD_ROWS:  # long tables fold: the page stays readable
                    md += [f"<details><summary>{caption} ({len(frame)} rows)</summary>", "",
                           f"**{caption}**", "", _markdown(frame), "", "</details>", ""]
                    body.append(f"<details><summary>{_html_text(caption)} ({len(frame)} rows)</summary>"
                                + _html_table(frame) + "</details>")
                else:
                    md += [f"**{caption}**", "", _markdown(frame), ""]
                    body.append(f"<h3>{_html_text(caption)}</h3>" + _html_table(frame))
            elif kind == "figure":
                name, caption = rest
                md += [f"![{name}]({name})", "", f"*{caption}*" if caption else "", ""]
                body.append(f'<figure><img src="{html.escape(name)}" alt="{html.escape(caption or name)}" '
                            f'style="max-width:100%"><figcaption>{_html_text(caption)}'
                            f"{_extra_formats(rep.dir, name)}</figcaption></figure>")
    missing = rep.missing or ["nothing"]
    md += ["## Missing or not computed", ""] + [f"- {m}" for m in missing] + ["", f"Report built in {seconds:.1f} s."]
    body.append("<h2>Missing or not computed</h2><ul>" + "".join(f"<li>{_html_text(m)}</li>" for m in missing)
                + "</ul>")
    write_atomic(rep.dir / "summary.md", "\n".join(md) + "\n")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>rgsweep report</title><style>"
            "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
            "table{border-collapse:collapse;font-size:12px;margin-bottom:1em}"
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
            "figcaption{font-size:13px;color:#333;max-width:900px;margin:0.3em 0 1.5em}"
            "summary{cursor:pointer;font-weight:bold;margin:0.5em 0}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
    index = rep.dir / "index.html"
    write_atomic(index, page)
    errors = rep.dir / "errors.txt"
    if rep.traces:  # for whoever debugs a section that could not be computed
        write_atomic(errors, "\n".join(rep.traces))
    else:
        errors.unlink(missing_ok=True)
    return index
