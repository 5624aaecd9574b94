"""Validation figures (plotly, no Streamlit): ROC, precision-recall and calibration curves, and the house
style every chart shares. The Model page (dashboard/figures.py) and the evaluation report
(training/evaluate.py) both draw their curves here, from the curve dicts model.metrics.curves writes:
{"roc": {fpr, tpr}, "pr": {recall, precision}, "calibration": {mean_predicted, fraction_positive, count}}.

Each figure takes named curve sets ({name: curves}; one set on the Model page, pooled + one per dataset in
the report) and, optionally, the operating point: anything with threshold, sensitivity, specificity and
ppv (dashboard.operating_point.OperatingPoint). `percent` formats the probabilities in hover texts and
names, so the dashboard can pass its one percentage format.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np
import plotly.graph_objects as go

from model.metrics import SCREENING_PREVALENCE

RED = "#c0392b"
ORANGE = "#d9822b"
GREEN = "#2e8b57"
BLUE = "#1f5f8b"
GREY = "#8a94a0"
# Further curve sets (per dataset) after the first, which is BLUE.
PALETTE = ("#2e8b57", "#d9822b", "#7d3c98", "#c0392b", "#17a2b8", "#8a6d3b")
# Plotly's toolbar (mode bar) sits in the top ~30 px of the chart: titles start below it, never under it.
MODEBAR_PX = 32

Curves = Mapping[str, Any]
Percent = Callable[..., str]  # percent(p, digits=None) -> "12.3%"


class OperatingPointLike(Protocol):
    threshold: float
    sensitivity: float | None
    specificity: float | None

    @property
    def ppv(self) -> float | None: ...


def plain_percent(p: float, digits: int | None = None) -> str:
    return f"{100 * float(p):.{1 if digits is None else digits}f}%"


def style_figure(fig: go.Figure, title: str | None = None, height: int = 380, **kwargs: Any) -> go.Figure:
    """The house style: title below the toolbar, legend under the plot, light grid, white background."""
    fig.update_layout(
        title={
            "text": title,
            "x": 0,
            "xanchor": "left",
            "xref": "paper",
            "y": 1,
            "yref": "container",
            "yanchor": "top",
            "pad": {"t": MODEBAR_PX},
            "font": {"size": 15},
        }
        if title
        else None,
        height=height,
        margin={"l": 10, "r": 10, "t": MODEBAR_PX + 40 if title else MODEBAR_PX + 6, "b": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.18, "xanchor": "left", "x": 0},
        plot_bgcolor="white",
        **kwargs,
    )
    fig.update_xaxes(showgrid=True, gridcolor="#eef0f3", zeroline=False)
    fig.update_yaxes(showgrid=True, gridcolor="#eef0f3", zeroline=False)
    return fig


def empty_figure(message: str, height: int = 260) -> go.Figure:
    """A figure that only says why there is nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(
        text=message,
        showarrow=False,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        font={"size": 14, "color": GREY},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return style_figure(fig, height=height)


def _with(sets: Mapping[str, Curves | None], key: str, *fields: str) -> list[tuple[int, str, Curves]]:
    """(colour index, name, curve) for every set that has the curve `key` with all its fields."""
    found = []
    for i, (name, curves) in enumerate(sets.items()):
        curve = (curves or {}).get(key) or {}
        if all(curve.get(f) for f in fields):
            found.append((i, name, curve))
    return found


def _colour(i: int) -> str:
    return BLUE if i == 0 else PALETTE[(i - 1) % len(PALETTE)]


def _line(x: Any, y: Any, name: str, colour: str, hover: str) -> go.Scatter:
    return go.Scatter(
        x=x, y=y, mode="lines", name=name, line={"color": colour, "width": 2.5}, hovertemplate=hover + "<extra></extra>"
    )


LOG_PERCENT_TICKS = (0.00001, 0.00003, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def percent_tick_text(value: float) -> str:
    """A log axis's percentage with the decimals it needs (0.01%, 0.3%, 3%), never "0.0%"."""
    digits = max(0, -math.floor(math.log10(100 * value)))
    return f"{100 * value:.{digits}f}%"


def log_percent_axis(lower: float, upper: float) -> dict[str, Any]:
    """Settings of a log axis of probabilities from ``lower`` to ``upper``, ticked at 1-3-10 steps."""
    ticks = [t for t in LOG_PERCENT_TICKS if lower <= t <= upper * 1.0001]
    return {
        "type": "log",
        "range": [math.log10(lower), math.log10(upper)],
        "tickvals": ticks,
        "ticktext": [percent_tick_text(t) for t in ticks],
    }


def _diagonal(name: str) -> go.Scatter:
    return go.Scatter(
        x=[0, 1], y=[0, 1], mode="lines", name=name, line={"color": GREY, "dash": "dot"}, hoverinfo="skip"
    )


def roc_figure(
    sets: Mapping[str, Curves | None], op: OperatingPointLike | None = None, percent: Percent = plain_percent
) -> go.Figure | None:
    """ROC curves (x: 1 − specificity, y: sensitivity) with chance and the operating point; None without data."""
    curves = _with(sets, "roc", "fpr", "tpr")
    if not curves:
        return None
    fig = go.Figure(_diagonal("chance"))
    for i, name, roc in curves:
        hover = "1 − specificity %{x:.2f}<br>sensitivity %{y:.2f}"
        fig.add_trace(_line(roc["fpr"], roc["tpr"], name, _colour(i), hover))
    if op and op.sensitivity is not None and op.specificity is not None:
        fig.add_trace(
            go.Scatter(
                x=[1 - op.specificity],
                y=[op.sensitivity],
                mode="markers",
                name="operating point",
                marker={"size": 13, "color": RED, "symbol": "x"},
                hovertemplate=f"threshold {percent(op.threshold)}<br>sensitivity %{{y:.1%}}<br>"
                f"specificity {percent(op.specificity, 1)}<extra></extra>",
            )
        )
    fig.update_xaxes(range=[0, 1], title="1 − specificity (benign lesions flagged)")
    fig.update_yaxes(range=[0, 1.02], title="sensitivity (melanomas found)")
    return style_figure(fig, "ROC curve", height=400)


def screening_precision(roc: Curves, prevalence: float) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) of a ROC curve re-weighted to `prevalence` (points with tpr = 0 dropped)."""
    tpr = np.asarray(roc["tpr"], dtype=float)
    fpr = np.asarray(roc["fpr"], dtype=float)
    denom = tpr * prevalence + fpr * (1 - prevalence)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(denom > 0, tpr * prevalence / denom, np.nan)
    keep = tpr > 0
    return tpr[keep], precision[keep]


def pr_figure(
    sets: Mapping[str, Curves | None],
    op: OperatingPointLike | None = None,
    prevalence: float | None = SCREENING_PREVALENCE,
    percent: Percent = plain_percent,
) -> go.Figure | None:
    """Precision-recall at the validation set's prevalence and, unless prevalence is None, the first set's
    curve re-weighted to screening prevalence with its chance line; None without data."""
    curves = _with(sets, "pr", "recall", "precision")
    if not curves:
        return None
    fig = go.Figure()
    for i, name, pr in curves:
        fig.add_trace(_line(pr["recall"], pr["precision"], name, _colour(i), "recall %{x:.2f}<br>precision %{y:.2f}"))
    first_roc = _with(dict(list(sets.items())[:1]), "roc", "fpr", "tpr")
    if prevalence is not None and first_roc:
        recall, precision = screening_precision(first_roc[0][2], prevalence)
        name = f"at {percent(prevalence, 2)} screening prevalence"
        fig.add_trace(_line(recall, precision, name, ORANGE, "recall %{x:.2f}<br>precision %{y:.3f}"))
    if op and op.sensitivity is not None and op.ppv is not None:
        fig.add_trace(
            go.Scatter(
                x=[op.sensitivity],
                y=[op.ppv],
                mode="markers",
                name="operating point",
                marker={"size": 13, "color": RED, "symbol": "x"},
                hovertemplate="sensitivity %{x:.1%}<br>PPV %{y:.1%}<extra></extra>",
            )
        )
    if prevalence is not None:
        fig.add_hline(
            y=prevalence,
            line={"color": GREY, "dash": "dot"},
            annotation_text="chance at screening prevalence",
            annotation_position="bottom right",
        )
    fig.update_xaxes(range=[0, 1], title="recall = sensitivity")
    fig.update_yaxes(range=[0, 1.02], title="precision = PPV")
    return style_figure(fig, "Precision–recall", height=400)


def calibration_figure(
    sets: Mapping[str, Curves | None], title: str = "Calibration (validation set)", log: bool = False
) -> go.Figure | None:
    """Observed fraction melanoma against mean predicted P(melanoma) per bin (marker area: the bin's lesions,
    ``count``, or its share of them, ``weight``, for a curve re-weighted to another prevalence) with the
    perfect-calibration diagonal; the axes end just above the data (a curve at screening prevalence lives
    below 15%); None without data."""
    curves = _with(sets, "calibration", "mean_predicted", "fraction_positive")
    if not curves:
        return None
    fig = go.Figure(_diagonal("perfect calibration"))
    top = 0.0
    for i, name, cal in curves:
        mean_pred, frac_pos = cal["mean_predicted"], cal["fraction_positive"]
        top = max(top, *mean_pred, *frac_pos)
        weighted = not cal.get("count") and bool(cal.get("weight"))
        sizes_of = cal.get("weight") if weighted else cal.get("count")
        sizes, in_bin = None, ["?"] * len(mean_pred)
        if sizes_of and all(c is not None for c in sizes_of):
            c = np.asarray(sizes_of, dtype=float)
            sizes = 8 + 18 * np.sqrt(c / c.max()) if c.max() > 0 else None
            in_bin = [f"{w:.0%} of lesions" if weighted else f"{int(w)} lesions" for w in c]
        fig.add_trace(
            go.Scatter(
                x=mean_pred,
                y=frac_pos,
                mode="lines+markers",
                name=name,
                line={"color": _colour(i), "width": 2},
                marker={"size": sizes if sizes is not None else 9, "color": _colour(i)},
                customdata=np.asarray(in_bin),
                hovertemplate="predicted %{x:.3f}<br>observed %{y:.3f}<br>in bin: %{customdata}<extra></extra>",
            )
        )
    upper = min(1.0, 1.1 * top) if top > 0 else 1.0
    if log:  # bins from 0.03% to 12%: on linear axes half of them sat in one blob at the origin
        positive = [v for _, _, cal in curves for v in (*cal["mean_predicted"], *cal["fraction_positive"]) if v > 0]
        lower = min(positive) / 1.5 if positive else 1e-4
        fig.data[0].update(x=[lower, upper], y=[lower, upper])  # the diagonal, drawn within the log range
        for axis, label in ((fig.update_xaxes, "mean predicted P(melanoma)"), (fig.update_yaxes, "observed share")):
            axis(**log_percent_axis(lower, upper), title=label + ", log scale")
        return style_figure(fig, title, height=400)
    fig.update_xaxes(range=[0, upper], title="mean predicted P(melanoma)")
    fig.update_yaxes(range=[0, upper * 1.02], title="observed fraction melanoma")
    return style_figure(fig, title, height=400)


def figures_page(figures: list[go.Figure | None], title: str) -> str:
    """A standalone HTML page with the figures one under the other (plotly.js embedded once)."""
    parts, first = [], True
    for fig in figures:
        if fig is None:
            continue
        parts.append(fig.to_html(full_html=False, include_plotlyjs=first))
        first = False
    head = html.escape(title)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{head}</title></head>\n<body>\n<h1>{head}</h1>\n'
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
