"""Where the report's figures go: a PNG for the page (200 dpi), and, on request, the same figure
as SVG and PDF beside it (``rgsweep report OUT --format png,svg,pdf``)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["save_figure", "figure_formats", "FORMATS", "DPI"]

#: Formats a report can write; the page always shows the PNG.
FORMATS = ("png", "svg", "pdf")
DPI = 200
_extra: list[str] = []


@contextmanager
def figure_formats(formats):
    """Within the block, :func:`save_figure` also writes ``formats`` other than png."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"--format: {', '.join(unknown)} is not one of {', '.join(FORMATS)}")
    saved = list(_extra)
    _extra[:] = [f for f in formats if f != "png"]
    try:
        yield
    finally:
        _extra[:] = saved


def save_figure(fig, path) -> Path:
    """Lay out, write ``path`` (PNG) and any extra formats beside it, close; returns ``path``."""
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    for ext in _extra:
        fig.savefig(path.with_suffix(f".{ext}"))
    plt.close(fig)
    return path
