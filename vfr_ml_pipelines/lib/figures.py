"""Figures as PNG bytes, for MLflow artifacts and Dagster metadata.

Built with matplotlib's object API (`Figure` + the Agg canvas) rather than pyplot: nothing is
registered in pyplot's global figure list, so nothing has to be closed, no window can ever open
whatever backend the process selected, and each figure is freed as soon as the function returns.
The process-wide backend is left alone on purpose: switching it with `matplotlib.use` from a
library would change the backend of whoever imports us (a notebook, for example). The PNG
metadata carries no timestamp or version, so equal inputs give equal bytes.
"""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
# fixed PNG metadata (matplotlib otherwise writes its version into "Software")
PNG_METADATA = {"Software": None}


def new_figure(width: float = 9.0, height: float = 5.0) -> Figure:
    """A figure of `width` x `height` inches on its own Agg canvas, laid out to fit its labels."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG; the figure is cleared (its memory freed) afterwards."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata=PNG_METADATA)
    figure.clear()
    return buffer.getvalue()
