"""Scaling and bias figures written straight to PNG or SVG files, without a window (``hybridscale demo``).

They are drawn with the primitives of :mod:`gui.figures`, the same the app's
pages draw with, so a file written here looks like the app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from gui.figures import (
    add_colour_bar,
    add_legend,
    colour_bar_label,
    configure_plotting,
    draw_heatmap,
    draw_scaling,
    export_image,
    heatmap_colour_map,
    heatmap_levels,
    reference_labels,
    scaling_legend,
    scaling_title,
    series_styles,
    share_y_range,
)
from gui.qt_app import ensure_app
from results.plot_data import HeatmapChoice, heatmap, heatmap_choices, off_axis_note, scaling_panels, trained_series


def _figure(width: int, height: int) -> pg.GraphicsLayoutWidget:
    ensure_app()
    configure_plotting()
    widget = pg.GraphicsLayoutWidget()
    widget.resize(width, height)
    return widget


def _write(widget: pg.GraphicsLayoutWidget, path: Path, width: int) -> Path:
    widget.ci.setGeometry(QtCore.QRectF(0, 0, widget.width(), widget.height()))
    QtWidgets.QApplication.processEvents()
    written = export_image(widget.ci, Path(path), width=width if Path(path).suffix.lower() == ".png" else None)
    widget.deleteLater()
    return written


def save_scaling_figure(rows: list[dict], path: Path, *, width: int = 1200, height: int = 500, **view) -> Path:
    """Scaling curves, one panel per query language, written to ``path`` (.png or .svg); ``view`` is the
    keyword choice of :func:`scaling_figure` (eval set, setting, metric, passages, query languages)."""
    return _write(scaling_figure(rows, width=width, height=height, **view), path, width)


def scaling_figure(
    rows: list[dict],
    *,
    eval_set: str,
    setting: str,
    metric: str,
    passage_language: str = "all",
    query_languages: Sequence[str] | None = None,
    width: int = 1200,
    height: int = 500,
) -> pg.GraphicsLayoutWidget:
    """The figure of :func:`save_scaling_figure` as a widget (the Findings page shows it); LookupError if empty.

    The y range covers the curves and the untrained model, not the lexical
    reference: BM25 far below a dense model would flatten the differences the
    figure is for; a line under the title gives its values instead.
    """
    panels = scaling_panels(rows, eval_set=eval_set, setting=setting, metric=metric,
                            passage_language=passage_language, query_languages=query_languages)
    if not panels:
        raise LookupError(f"no {metric} values for {eval_set} {setting} (passages: {passage_language}); nothing to plot")
    widget = _figure(width, height)
    widget.ci.addLabel(scaling_title(metric, eval_set, setting, passage_language), colspan=len(panels), size="12pt")
    widget.ci.nextRow()
    note = widget.ci.addLabel("", colspan=len(panels), size="9pt", color="#555555")
    widget.ci.nextRow()
    styles = series_styles(trained_series(rows))
    plots = []
    for panel in panels:
        plots.append(widget.ci.addPlot())
        draw_scaling(plots[-1], panel, metric=metric, styles=styles, references=reference_labels(panels))
    shown = share_y_range(plots, panels, lexical=False)
    note.setText(off_axis_note(panels, *shown) if shown else "", size="9pt", color="#555555")
    add_legend(widget.ci, scaling_legend(styles, panels))
    return widget


def save_heatmap_figure(
    rows: list[dict],
    path: Path,
    *,
    eval_set: str,
    strategies: Sequence[tuple[str, int]] | None = None,
    metric: str = "MeanRank",
    width: int = 1200,
    height: int = 480,
) -> Path:
    """Side-by-side heatmaps, one per (series, size) averaged over seeds, with one colour bar.

    ``strategies`` default: every (series, size) present, up to four (the
    untrained model first, then the largest size of each series).
    """
    choices = [HeatmapChoice(label, size) for label, size in strategies] if strategies else _default_choices(
        heatmap_choices(rows, eval_set=eval_set, metric=metric))
    if not choices:
        raise LookupError(f"no {metric} cells on {eval_set}; nothing to plot")
    maps = [heatmap(rows, choice, eval_set=eval_set, metric=metric) for choice in choices]
    levels = heatmap_levels(maps)
    colour_map = heatmap_colour_map(metric)
    widget = _figure(width, height)
    images = [draw_heatmap(widget.ci.addPlot(), data, levels, colour_map).image for data in maps]
    add_colour_bar(widget.ci, images, levels, colour_map, colour_bar_label(maps[0]))
    return _write(widget, path, width)


def _default_choices(choices: list[HeatmapChoice]) -> list[HeatmapChoice]:
    picked: dict[str, HeatmapChoice] = {}
    for choice in choices:  # sorted by size within a strategy, so the last one wins
        picked[choice.label] = choice
    ordered = sorted(picked.values(), key=lambda c: c.train_size > 0)  # the untrained model (size 0) first
    return ordered[:4]
