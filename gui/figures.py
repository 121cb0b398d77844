"""The drawing primitives: scaling curves and bias heatmaps on pyqtgraph items.

The GUI's views and the headless figures of ``hybridscale demo``
(:mod:`gui.figure_files`) call the same ``draw_*`` functions, so a PNG written
by the demo looks like the app. Data come ready-made from :mod:`results.plot_data`;
nothing here computes statistics. Images are written with pyqtgraph's own
exporters (PNG via ImageExporter, SVG via SVGExporter).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6 import QtCore, QtGui, QtWidgets

from gui import svg_compat
from results.plot_data import (
    LOWER_IS_BETTER,
    Heatmap,
    ScalingPanel,
    Series,
    better_sign,
    in_unit_interval,
    panel_tooltips,
    queries_text,
    series_order,
    value_extent,
)
from vocabulary.languages import language_name
from vocabulary.records import ALL
from vocabulary.strategies import strategy_position

#: Okabe-Ito colours (distinguishable with colour blindness): one per strategy of the strategy table, in its
#: order (mono, cross, hybrid, multi, contrastive), then for strategies the table does not know.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
#: What tells apart the series of one strategy (two alphas, two learning rates): a line style and a marker each.
VARIANT_DASHES = (QtCore.Qt.PenStyle.SolidLine, QtCore.Qt.PenStyle.DashLine, QtCore.Qt.PenStyle.DotLine,
                  QtCore.Qt.PenStyle.DashDotLine, QtCore.Qt.PenStyle.DashDotDotLine)
VARIANT_SYMBOLS = ("o", "t", "s", "d", "star")
BASELINE_COLOUR = "#555555"
#: One dash pattern per evaluation-only reference (the untrained model, BM25), in label order, so each has
#: its own line and legend entry.
REFERENCE_DASHES = (QtCore.Qt.PenStyle.DashLine, QtCore.Qt.PenStyle.DotLine, QtCore.Qt.PenStyle.DashDotLine,
                    QtCore.Qt.PenStyle.DashDotDotLine)
GRID_COLOUR = "#dcdcdc"
#: How the band around a mean is drawn: min-max over seeds, or mean +- one sample sd.
BANDS = ("min–max", "±sd")
#: Samples of a drawn fit curve (between the smallest and the largest size measured; never extrapolated).
FIT_SAMPLES = 64
FIT_FORMULA = "a − b·N^−c"


def configure_plotting() -> None:
    """pyqtgraph's process-wide settings that every drawing here assumes; call once before drawing.

    Dark text on white, like a printed figure, with smooth lines; and SVG
    export working with this Qt (:mod:`gui.svg_compat`). These change global
    state, so the app's start and the headless figure writer call this
    explicitly instead of importing it as a side effect. Calling it again
    changes nothing.
    """
    pg.setConfigOptions(background="w", foreground="k", antialias=True)
    svg_compat.install()


def export_image(item: QtWidgets.QGraphicsItem | QtWidgets.QGraphicsScene, path: Path, width: int | None = None) -> Path:
    """Write ``item`` (a plot, a layout or a whole scene) as PNG or SVG, chosen by the file suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".png":
        exporter = pg.exporters.ImageExporter(item)
        if width:
            exporter.parameters()["width"] = int(width)
    elif suffix == ".svg":
        exporter = pg.exporters.SVGExporter(item)
    else:
        raise ValueError(f"{path.name}: cannot write {suffix or 'a file without suffix'}; use .png or .svg")
    path.parent.mkdir(parents=True, exist_ok=True)
    exporter.export(str(path))
    return path


@dataclass(frozen=True)
class SeriesStyle:
    """How one series is drawn: its strategy's colour, and the line style and marker of its variant."""

    colour: str
    dash: QtCore.Qt.PenStyle
    symbol: str

    def pen(self, width: float = 2) -> QtGui.QPen:
        return pg.mkPen(self.colour, width=width, style=self.dash)


def series_styles(series: Iterable[tuple[str, str]]) -> dict[str, SeriesStyle]:
    """Series name -> style, for (strategy, series name) pairs: give them all the series of the data shown.

    A strategy always has the same colour (its place in the strategy table),
    whatever else is plotted. Its variants, in name order, get the line
    styles and markers of :data:`VARIANT_DASHES` and :data:`VARIANT_SYMBOLS`,
    then lighter shades of the colour once those run out. Assigned over the
    whole selection, not one plot, so a series keeps its style when the eval
    set, metric or languages change.
    """
    styles: dict[str, SeriesStyle] = {}
    variants: dict[str, int] = {}
    for strategy, name in sorted(set(series), key=lambda pair: series_order(*pair)):
        index = variants[strategy] = variants.get(strategy, -1) + 1
        colour = QtGui.QColor(PALETTE[strategy_position(strategy) % len(PALETTE)])
        shade = index // len(VARIANT_DASHES)
        styles[name] = SeriesStyle(colour.lighter(100 + 35 * shade).name(), VARIANT_DASHES[index % len(VARIANT_DASHES)],
                                   VARIANT_SYMBOLS[index % len(VARIANT_SYMBOLS)])
    return styles


class ValueAxis(pg.AxisItem):
    """An axis whose tick labels are the values plotted, never rescaled by an SI prefix.

    pyqtgraph 0.14 rescales an axis without units whose range lies within
    [0, 1] (0.62 is written 620, with "(x0.001)" beside the label), and
    ``enableAutoSIPrefix(False)`` does not undo that: it keeps the scale the
    axis' range implied at the moment it was called (pyqtgraph issue 2899). A
    panel redrawn for a metric in [0, 1] after another one therefore showed
    ticks a thousand times too high, on screen and in exported images. This
    axis has no SI prefix whatever its range or the order of calls.
    """

    def __init__(self, orientation: str, **options) -> None:
        super().__init__(orientation, **options)
        self.enableAutoSIPrefix(False)

    def updateAutoSIPrefix(self) -> None:  # noqa: N802 - pyqtgraph override
        """Where pyqtgraph would choose a prefix from the range: always none (scale 1)."""
        self.autoSIPrefixScale = 1.0
        self.labelUnitPrefix = ""
        self._updateLabel()


def use_value_axes(plot: pg.PlotItem) -> None:
    """Give ``plot`` :class:`ValueAxis` items on the sides that show values (left, bottom), once."""
    for side in ("left", "bottom"):
        if not isinstance(plot.getAxis(side), ValueAxis):
            plot.setAxisItems({side: ValueAxis(side)})


# ---- scaling curves -----------------------------------------------------------
@dataclass
class DrawnScaling:
    """The items of one scaling panel, kept so views and tests can read what is shown."""

    curves: dict[str, pg.PlotDataItem] = field(default_factory=dict)
    points: dict[str, pg.ScatterPlotItem] = field(default_factory=dict)
    bands: dict[str, pg.FillBetweenItem] = field(default_factory=dict)
    baselines: dict[str, pg.InfiniteLine] = field(default_factory=dict)
    fits: dict[str, pg.PlotCurveItem] = field(default_factory=dict)
    #: (series label, size) -> hover text of that point.
    tips: dict[tuple[str, int], str] = field(default_factory=dict)


def draw_scaling(
    plot: pg.PlotItem, panel: ScalingPanel, *, metric: str, styles: Mapping[str, SeriesStyle], band: str = BANDS[0],
    references: Sequence[str] = (),
) -> DrawnScaling:
    """Mean over seeds per size (log x), a shaded band, dashed baselines and hover tooltips (the legend is separate).

    x is drawn as log10(size) with ticks labelled by the real sizes: a log
    axis without pyqtgraph's log mode keeps the band and the points aligned.
    """
    drawn = start_scaling_panel(plot, panel, metric=metric, references=references)
    for series in panel.series:
        draw_series(plot, drawn, series, metric=metric, style=styles[series.label], band=band)
    return drawn


def panel_title(query_language: str) -> str:
    if query_language == ALL:
        return "All query languages (average)"
    return f"{language_name(query_language)} ({query_language}) queries"


def start_scaling_panel(plot: pg.PlotItem, panel: ScalingPanel, *, metric: str,
                        references: Sequence[str] = ()) -> DrawnScaling:
    """An emptied panel with its axes, title, grid and baselines; :func:`draw_series` adds the curves.

    ``references`` are the labels of every reference line of the figure
    (:func:`reference_labels`), so a reference has the same dashes in every panel.

    The two halves are separate so the GUI can draw a panel a few
    milliseconds at a time while a worker's new results arrive.
    """
    drawn = DrawnScaling(tips=panel_tooltips(panel, metric))
    references = references or reference_labels([panel])
    plot.clear()
    use_value_axes(plot)
    for baseline in panel.baselines:
        line = pg.InfiniteLine(pos=baseline.value, angle=0, pen=baseline_pen(baseline.label, references), movable=False)
        line.setToolTip(f"{baseline.label} (size 0)\n{metric}: {baseline.value:.4f}\n"
                        f"queries: {queries_text(baseline.queries)}\nruns: {', '.join(baseline.run_ids)}")
        plot.addItem(line)
        drawn.baselines[baseline.label] = line
    sizes = sorted({p.size for s in panel.series for p in s.points})
    bottom = plot.getAxis("bottom")
    bottom.setTicks([[(math.log10(s), f"{s:g}") for s in sizes], []])
    bottom.setLabel("training size (question groups, log scale)")
    plot.getAxis("left").setLabel(metric + (" (lower is better)" if metric in LOWER_IS_BETTER else ""))
    plot.setTitle(panel_title(panel.query_language), size="11pt")
    show_grid(plot)
    if sizes:
        span = math.log10(sizes[-1]) - math.log10(sizes[0])
        pad = max(span * 0.08, 0.1)
        plot.setXRange(math.log10(sizes[0]) - pad, math.log10(sizes[-1]) + pad, padding=0)
    plot.enableAutoRange(axis="y")
    return drawn


def draw_series(plot: pg.PlotItem, drawn: DrawnScaling, series: Series, *, metric: str, style: SeriesStyle,
                band: str = BANDS[0]) -> None:
    """One series' line, its points with tooltips, and its band when some point has several seeds."""
    if band not in BANDS:
        raise ValueError(f"band {band!r}: use one of {', '.join(BANDS)}")
    colour = QtGui.QColor(style.colour)
    x = np.log10([p.size for p in series.points])
    y = np.array(series.means)
    if band == BANDS[0]:
        low, high = [p.minimum for p in series.points], [p.maximum for p in series.points]
    else:
        low, high = y - [p.sd for p in series.points], y + [p.sd for p in series.points]
    if series.has_spread:
        edge_low, edge_high = pg.PlotCurveItem(x, np.asarray(low)), pg.PlotCurveItem(x, np.asarray(high))
        fill = QtGui.QColor(colour)
        fill.setAlpha(50)
        drawn.bands[series.label] = pg.FillBetweenItem(edge_low, edge_high, brush=fill)
        plot.addItem(drawn.bands[series.label])
    curve = pg.PlotDataItem(x, y, pen=style.pen(), name=series.label)
    tips = [drawn.tips[(series.label, p.size)] for p in series.points]
    points = pg.ScatterPlotItem(
        x=x, y=y, data=tips, hoverable=True, tip=_tip, size=8, symbol=style.symbol, brush=colour,
        pen=pg.mkPen(colour), hoverSize=11,
    )
    plot.addItem(curve)
    plot.addItem(points)
    drawn.points[series.label] = points
    drawn.curves[series.label] = curve


def draw_fit(plot: pg.PlotItem, drawn: DrawnScaling, series: Series, *, metric: str, style: SeriesStyle) -> str:
    """The fit a − b·N^−c through the series' plotted means, as a thin line; '' if drawn, else why not (a sentence:
    too few sizes, or means without a trend over log N, as the reports refuse them).

    The curve spans the sizes measured and no further. analysis.fits is
    imported here, when a fit is first asked for: it brings scipy, which
    would add about a second to the window's start.
    """
    from analysis.fits import FitError, fit_power_law, trend
    from analysis.stats import SIGNIFICANCE

    try:
        law = fit_power_law(series.sizes, series.means)
    except FitError as error:
        return str(error)
    if not trend(series.sizes, series.means).significant:  # a curve through noise would draw a trend that is not there
        return f"flat within noise (the slope of the means over log n has p ≥ {SIGNIFICANCE})"
    sizes = np.geomspace(series.sizes[0], series.sizes[-1], FIT_SAMPLES)
    line = pg.PlotCurveItem(np.log10(sizes), law(sizes), pen=style.pen(width=1))
    line.setToolTip(f"{series.label}: fit {metric} = {fit_formula(law.a, law.b, law.c)}\n"
                    f"through the {len(series.sizes)} plotted means")
    line.setZValue(-0.5)  # under the points: hovering a point shows the point's tooltip, not a fit passing through it
    plot.addItem(line)
    drawn.fits[series.label] = line
    return ""


def fit_formula(a: float, b: float, c: float) -> str:
    """``a − b·N^−c`` with the numbers in, written with one sign: a negative b reads "a + |b|·N^−c"."""
    sign = "−" if b >= 0 else "+"
    return f"{a:.4f} {sign} {abs(b):.4g}·N^−{c:.3f}"


def show_grid(plot: pg.PlotItem) -> None:
    """Light grey lines at the labelled ticks, behind the data.

    Opaque on purpose: pyqtgraph's own grid is translucent black, and Qt
    draws translucent lines through a slow path that made up most of every
    repaint of a scaling page; opaque lines cost next to nothing
    (bench/RESULTS.md).
    """
    plot.showGrid(x=True, y=True)
    for side in ("left", "bottom"):
        axis = plot.getAxis(side)
        axis.setTickPen(pg.mkPen(GRID_COLOUR))
        axis.setStyle(tickAlpha=255, maxTickLevel=0)
        axis.setZValue(-1)  # negative: painted before the plot's items, so no line crosses a point or curve


def share_y_range(plots: Sequence[pg.PlotItem], panels: Sequence[ScalingPanel], baselines: bool = True,
                  lexical: bool = True) -> tuple[float, float] | None:
    """One y range for every panel, so panels compare at a glance; each one's baselines too unless not asked for
    (the lexical reference's only if ``lexical``). Returns the range set (None if nothing is drawn).

    Without the baselines (a panel's own range) a reference far from the
    curves, such as BM25's MeanRank, no longer flattens them; it stays in the
    legend and its tooltip. A panel with no curve is scaled to its baselines.
    """
    extent = value_extent(panels, baselines, lexical) or value_extent(panels)
    if extent is None:
        return None
    low, high = padded_range(*extent)
    for plot in plots:
        plot.setYRange(low, high, padding=0)
    return low, high


def padded_range(low: float, high: float) -> tuple[float, float]:
    """A y range around [low, high] with a margin; a single value gets a margin of its own size's scale.

    A margin proportional to a zero span would be zero, and pyqtgraph then
    labels ticks in the tiny steps of rounding noise (584.4995, 584.5000, 584.5005).
    """
    span = high - low
    pad = span * 0.06 if span > 0 else max(abs(high) * 0.05, 0.05)
    return low - pad, high + pad


def scaling_title(metric: str, eval_set: str, setting: str, passage_language: str) -> str:
    pool = "the multilingual pool" if passage_language == "all" else f"{language_name(passage_language)} passages"
    return f"{metric} on {eval_set}, {setting} setting, searching {pool}"


def _tip(x: float, y: float, data: str) -> str:
    return data


def reference_labels(panels: Sequence[ScalingPanel]) -> tuple[str, ...]:
    """The labels of the evaluation-only references drawn in any panel, in the order their dashes are assigned."""
    return tuple(sorted({b.label for panel in panels for b in panel.baselines}))


def baseline_pen(label: str, references: Sequence[str]) -> QtGui.QPen:
    """The dashed line of reference ``label`` among ``references`` (each its own dash pattern)."""
    index = references.index(label) if label in references else 0
    return pg.mkPen(BASELINE_COLOUR, width=2, style=REFERENCE_DASHES[index % len(REFERENCE_DASHES)])


def scaling_legend(styles: Mapping[str, SeriesStyle], panels: Sequence[ScalingPanel],
                   fits: bool = False) -> pg.LegendItem:
    """One legend for all panels (placed beside them, so it never hides a curve)."""
    legend = pg.LegendItem(labelTextSize="9pt", verSpacing=-2)
    fill_scaling_legend(legend, styles, panels, fits)
    return legend


def legend_entries(styles: Mapping[str, SeriesStyle], panels: Sequence[ScalingPanel],
                   fits: bool = False) -> tuple[tuple[SeriesStyle | str, str], ...]:
    """(style or kind, text) of every legend line: the series drawn, baselines, the band and the fit when shown."""
    drawn: dict[str, str] = {}
    for panel in panels:
        drawn.update((s.label, s.strategy) for s in panel.series)
    in_order = sorted(drawn.items(), key=lambda item: series_order(item[1], item[0]))
    entries: list[tuple[SeriesStyle | str, str]] = [(styles[label], label) for label, _strategy in in_order]
    entries += [(f"baseline:{label}", f"{label} (size 0)") for label in reference_labels(panels)]
    if any(s.has_spread for panel in panels for s in panel.series):
        entries.append(("band", "band: spread over seeds"))
    if fits:
        entries.append(("fit", f"thin line: fit {FIT_FORMULA}"))
    return tuple(entries)


def fill_scaling_legend(legend: pg.LegendItem, styles: Mapping[str, SeriesStyle], panels: Sequence[ScalingPanel],
                        fits: bool = False) -> None:
    """(Re)write the entries of ``legend``, unless they are already these (a redraw after new data)."""
    entries = legend_entries(styles, panels, fits)
    if getattr(legend, "hybridscale_entries", None) == entries:
        return
    legend.clear()
    for kind, text in entries:
        if isinstance(kind, SeriesStyle):  # one point of data: pyqtgraph styles a sample's marker only then
            sample = pg.PlotDataItem([0], [0], pen=kind.pen(), symbol=kind.symbol, symbolSize=7,
                                     symbolBrush=kind.colour, symbolPen=kind.colour)
        elif kind.startswith("baseline:"):
            sample = pg.PlotDataItem(pen=baseline_pen(kind.removeprefix("baseline:"), reference_labels(panels)))
        elif kind == "band":
            sample = pg.PlotDataItem(pen=pg.mkPen(200, 200, 200, width=8))
        else:
            sample = pg.PlotDataItem(pen=pg.mkPen("#333333", width=1))
        legend.addItem(sample, text)
    legend.hybridscale_entries = entries
    layout = legend.parentLayoutItem()
    if isinstance(layout, QtWidgets.QGraphicsLayout):  # LegendItem moves itself to (0, 0) when it resizes;
        layout.invalidate()                             # put it back in its column now, not at the next
        layout.activate()                               # layout pass (an image exported before would show it there)


def add_legend(layout: pg.GraphicsLayout, legend: pg.LegendItem) -> None:
    """Put ``legend`` in the layout's next column at its natural size, top-aligned."""
    legend.setSizePolicy(QtWidgets.QSizePolicy.Policy.Fixed, QtWidgets.QSizePolicy.Policy.Fixed)
    layout.addItem(legend)
    layout.layout.setAlignment(legend, QtCore.Qt.AlignmentFlag.AlignTop)


# ---- bias heatmaps ------------------------------------------------------------
@dataclass
class DrawnHeatmap:
    """The items of one drawn map, kept so a redraw with new values can rewrite them in place."""

    plot: pg.PlotItem
    image: pg.ImageItem
    #: (row, column) -> the text written in that cell: its value, or a dash where there is none.
    cells: dict[tuple[int, int], pg.TextItem]
    #: (query languages, passage languages): the rows and columns the items were laid out for.
    languages: tuple[tuple[str, ...], tuple[str, ...]]


def heatmap_levels(maps: Sequence[Heatmap]) -> tuple[float, float]:
    """One colour scale for maps shown side by side, so equal colours mean equal values.

    A share such as nDCG@10 is coloured on its whole range [0, 1]: scaled to
    the values present (0.91 to 1.0, say) small differences would look like
    the largest possible ones.
    """
    if maps and all(in_unit_interval(m.metric) and not m.difference for m in maps):
        return (0.0, 1.0)
    values = np.concatenate([m.values.ravel() for m in maps]) if maps else np.array([])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (0.0, 1.0)
    low, high = float(values.min()), float(values.max())
    return (low, high) if high > low else (low - 0.5, high + 0.5)


def heatmap_languages(data: Heatmap) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(data.query_languages), tuple(data.passage_languages)


def draw_heatmap(plot: pg.PlotItem, data: Heatmap, levels: tuple[float, float], colour_map: pg.ColorMap) -> DrawnHeatmap:
    """The matrix as an image (query languages down, passage languages across) with its values written in."""
    plot.clear()
    use_value_axes(plot)
    image = pg.ImageItem(axisOrder="row-major")
    image.setTransform(QtGui.QTransform().translate(-0.5, -0.5))
    plot.addItem(image)
    plot.invertY(True)
    plot.setDefaultPadding(0.0)
    plot.setAspectLocked(False)
    plot.showAxes(True, showValues=(True, False, False, True))
    plot.getAxis("left").setWidth(52)
    plot.getAxis("bottom").setHeight(44)
    rows_ticks = [[(i, q) for i, q in enumerate(data.query_languages)], []]
    column_ticks = [[(j, p) for j, p in enumerate(data.passage_languages)], []]
    for side, ticks in (("left", rows_ticks), ("right", rows_ticks), ("top", column_ticks), ("bottom", column_ticks)):
        plot.getAxis(side).setTicks(ticks)
    plot.getAxis("left").setLabel("query language")
    plot.getAxis("bottom").setLabel("passage language")
    plot.setMouseEnabled(x=False, y=False)
    cells = {}
    for i in range(len(data.query_languages)):
        for j in range(len(data.passage_languages)):
            cells[i, j] = pg.TextItem(anchor=(0.5, 0.5))
            cells[i, j].setPos(j, i)
            plot.addItem(cells[i, j])
    plot.setRange(xRange=(-0.5, len(data.passage_languages) - 0.5), yRange=(-0.5, len(data.query_languages) - 0.5), padding=0)
    drawn = DrawnHeatmap(plot, image, cells, heatmap_languages(data))
    write_heatmap(drawn, data, levels, colour_map)
    return drawn


def write_heatmap(drawn: DrawnHeatmap, data: Heatmap, levels: tuple[float, float], colour_map: pg.ColorMap) -> None:
    """Show ``data`` (title, colours, cell values) in a map drawn for the same languages.

    A redraw after new results only changes values, and rewriting a map's
    texts costs a fraction of building its text items again (bench/RESULTS.md).
    """
    if heatmap_languages(data) != drawn.languages:
        raise ValueError(f"{data.title}: its languages {heatmap_languages(data)} differ from the drawn map's "
                         f"{drawn.languages}; draw it anew with draw_heatmap")
    drawn.image.setColorMap(colour_map)
    drawn.image.setImage(np.where(np.isfinite(data.values), data.values, np.nan), levels=levels)
    drawn.plot.setTitle(data.title, size="11pt")
    decimals = 1 if data.metric in LOWER_IS_BETTER else 3
    sign = "+" if data.difference else ""
    for (i, j), cell in drawn.cells.items():
        value = data.values[i, j]
        if not np.isfinite(value):  # a pair without a measurement (e.g. a bitext query's own language)
            cell.setText("—", color="#888888")
            continue
        share = min(max((value - levels[0]) / (levels[1] - levels[0]), 0.0), 1.0)
        cell.setText(f"{value:{sign}.{decimals}f}", color=_text_colour(colour_map.mapToQColor(share)))


def _text_colour(background: QtGui.QColor) -> str:
    """Black on light cells, white on dark ones (relative luminance)."""
    luminance = 0.2126 * background.redF() + 0.7152 * background.greenF() + 0.0722 * background.blueF()
    return "k" if luminance > 0.45 else "w"


def heatmap_colour_map(metric: str) -> pg.ColorMap:
    """Viridis; reversed for lower-is-better metrics so bright always means good."""
    # pyqtgraph hands out one shared map per name and reverses in place: reverse a copy.
    colour_map = copy.deepcopy(pg.colormap.get("viridis"))
    if metric in LOWER_IS_BETTER:
        colour_map.reverse()
    return colour_map


def difference_colour_map(metric: str) -> pg.ColorMap:
    """A diverging map (blue, light grey at 0, red) turned so that blue always means B better than A."""
    colour_map = copy.deepcopy(pg.colormap.get("CET-D1"))  # blue at the low end
    if metric not in LOWER_IS_BETTER:
        colour_map.reverse()  # B better is positive: put blue at the high end
    return colour_map


def difference_levels(data: Heatmap) -> tuple[float, float]:
    """A scale symmetric around 0, so the neutral colour is no difference."""
    values = data.values[np.isfinite(data.values)]
    reach = float(np.abs(values).max()) if values.size else 0.0
    return (-reach, reach) if reach > 0 else (-1.0, 1.0)


def colour_bar_label(data: Heatmap) -> str:
    if data.difference:
        return f"B − A {data.metric} ({better_sign(data.metric)}: B better)"
    return data.metric + (" (lower is better)" if data.metric in LOWER_IS_BETTER else "")


def add_colour_bar(layout: pg.GraphicsLayout, images: Sequence[pg.ImageItem], levels: tuple[float, float],
                   colour_map: pg.ColorMap, label: str) -> pg.ColorBarItem:
    """One colour bar for all the maps in ``layout`` (placed in its last column)."""
    span = levels[1] - levels[0]
    bar = pg.ColorBarItem(values=levels, colorMap=colour_map, label=label, interactive=False,
                          rounding=10 ** math.floor(math.log10(span / 100)) if span > 0 else 0.01, width=18)
    bar.setImageItem(list(images))
    layout.addItem(bar)
    return bar
