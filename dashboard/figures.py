"""Plotly figure builders (no Streamlit): ugly-duckling map, ranked scores, trends; the validation curves
and the house style come from model/figures.py (shared with training/evaluate.py)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.operating_point import SCREENING_PREVALENCE, OperatingPoint
from dashboard.wording import UNCERTAINTY_SPREADS, pct, rank_label, score_band
from model import figures as validation_figures
from model.figures import (  # noqa: F401  (the palette and MODEBAR_PX are re-exported: the dashboard's charts use them)
    BLUE,
    GREEN,
    GREY,
    LOG_PERCENT_TICKS,
    MODEBAR_PX,
    ORANGE,
    RED,
    empty_figure,
    log_percent_axis,
    style_figure,
)

BAND_COLOURS = {"red": RED, "orange": ORANGE, "green": GREEN}
# Green (low) -> amber -> red (high) for P(melanoma).
SCORE_SCALE = [[0.0, "#2e8b57"], [0.35, "#a8b64a"], [0.55, "#e0a030"], [1.0, "#c0392b"]]


def plotly_text(value: object) -> str:
    """User text in a plotly label or hover: plotly reads a subset of HTML (links, styles), so escape it."""
    return html.escape(str(value), quote=False)


# ---------------------------------------------------------------- review


def ranked_scores(table: pd.DataFrame, threshold: float) -> go.Figure:
    """P(melanoma) per lesion in rank order, a dot with its uncertainty interval (± 2 TTA spreads), on a log
    axis: calibrated to screening, most scores and the threshold sit within the first few per cent, where a
    0-100% axis squeezes them into one corner. Each row names its band in words, not by colour alone, and says
    when the lesion is an ugly duckling."""
    if table.empty:
        return empty_figure("No scores yet.")
    data = table.sort_values("rank", ascending=False)
    p = data["p_melanoma"].to_numpy(float)
    spread = data["p_spread"].fillna(0).to_numpy(float)
    bands = [score_band(pi, threshold, si) for pi, si in zip(p, spread, strict=True)]
    floor = max(LOG_PERCENT_TICKS[0], min(float(np.min(p)), threshold) / 2)  # the axis's left end, below every score
    drawn = np.maximum(p, floor)  # a score below the axis's end (under 0.001%) sits at it
    low = np.maximum(p - UNCERTAINTY_SPREADS * spread, floor)
    high = np.minimum(p + UNCERTAINTY_SPREADS * spread, 1.0)
    outlier = data["outlier"].astype(bool) if "outlier" in data else pd.Series(False, index=data.index)
    names = [
        f"{rank_label(r)} · {plotly_text(lab)} · {band.name}" + (" · ugly duckling" if odd else "")
        for r, lab, band, odd in zip(data["rank"], data["label"], bands, outlier, strict=True)
    ]
    fig = go.Figure(
        go.Scatter(
            x=drawn,
            y=names,
            mode="markers",
            marker={"color": [BAND_COLOURS[b.colour] for b in bands], "size": 11, "line": {"color": "#333"}},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": np.maximum(high - drawn, 0.0),
                "arrayminus": drawn - low,  # never negative: low and drawn both stop at the axis's end
                "color": "#555",
            },
            customdata=np.stack([[b.title for b in bands], [pct(v, 3) for v in p]], axis=1),
            hovertemplate="%{y}<br>P(melanoma) %{customdata[1]}<br>%{customdata[0]}<extra></extra>",
        )
    )
    fig.add_vline(
        x=threshold,
        line={"color": "#333", "dash": "dash"},
        annotation_text=f"threshold {pct(threshold)}",
        annotation_position="top",
    )
    fig.update_xaxes(
        **log_percent_axis(floor, 1.0),
        title="P(melanoma), log scale; bars: the range across orientations",
        tickfont={"color": "#1b2733", "size": 13},
    )
    fig.update_yaxes(tickfont={"color": "#1b2733", "size": 13})
    style_figure(fig, height=max(240, 90 + 28 * len(data)), showlegend=False)
    fig.update_layout(margin={"t": max(fig.layout.margin.t or 0, 70)})  # room for the threshold's label
    return fig


# ---------------------------------------------------------------- model card


def roc_figure(validation: dict[str, Any] | None, op: OperatingPoint | None) -> go.Figure | None:
    return validation_figures.roc_figure({"model": validation}, op, percent=pct)


def pr_figure(
    validation: dict[str, Any] | None, op: OperatingPoint | None, prevalence: float = SCREENING_PREVALENCE
) -> go.Figure | None:
    """Precision-recall on the validation set, plus the same curve re-weighted to screening prevalence."""
    return validation_figures.pr_figure({"validation set": validation}, op, prevalence, percent=pct)


def calibration_figure(validation: dict[str, Any] | None) -> go.Figure | None:
    return validation_figures.calibration_figure({"model": validation})


def screening_calibration_figure(curve: dict[str, Any] | None) -> go.Figure | None:
    """The held-out scores' calibration re-weighted to screening prevalence (validation.json's
    ``calibration_at_screening_prevalence.cross_fitted``): what a displayed P(melanoma) means at a mole check."""
    return validation_figures.calibration_figure(
        {"held-out lesions at 1.76%": {"calibration": curve}}, title="Calibration at screening prevalence", log=True
    )


# ---------------------------------------------------------------- history

MIN_TREND_SPAN = timedelta(days=90)  # the narrowest date range a lesion's trend is drawn on
# Its own axis and unit: a diamond drawn above the threshold line read as "above threshold" (a visual review).
UD_TREND_NAME = "ugly-duckling score (lower panel; not compared with the threshold)"


UD_PANEL_TOP = 0.26  # the ugly-duckling panel's share of the trend's height, under the scores


def score_trend(points: Sequence[Any], threshold: float | None, title: str | None = None) -> go.Figure:
    """A lesion's P(melanoma) across visits (TrendPoint list, oldest first)."""
    if not points:
        return empty_figure("No scores recorded for this lesion.")
    times = [p.visit_time for p in points]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=times,
            y=[p.p_melanoma for p in points],
            mode="lines+markers",
            name="P(melanoma)",
            line={"color": BLUE, "width": 2.5},
            marker={"size": 10},
            customdata=np.asarray(  # the score as the cards and the report word it (pct), not plotly's .1%
                [[getattr(p, "visit_number", 0) or p.visit_id, p.model_id, p.rank, pct(p.p_melanoma)] for p in points],
                dtype=object,
            ),
            hovertemplate="%{x|%Y-%m-%d}<br>P(melanoma) %{customdata[3]}<br>visit %{customdata[0]} · rank "
            "%{customdata[2]}<br>model %{customdata[1]}<extra></extra>",
        )
    )
    ud_values = [float(p.ugly_duckling) for p in points if p.ugly_duckling is not None]
    if ud_values:
        fig.add_trace(
            go.Scatter(
                x=times,
                y=[p.ugly_duckling for p in points],
                mode="lines+markers",
                name=UD_TREND_NAME,
                line={"color": ORANGE, "dash": "dot"},
                marker={"symbol": "diamond"},
                yaxis="y2",
                hovertemplate="%{x|%Y-%m-%d}<br>ugly-duckling %{y:.2f}<extra></extra>",
            )
        )
        # Its own panel under the scores, in its own unit (a robust z, not a probability): every value drawn,
        # 0 always shown. Overlaid on the scores' panel, a z of 2.1 sat at "90%" beside a score of 50%.
        low, high = min(0.0, *ud_values), max(1.0, *ud_values)
        pad = 0.1 * (high - low)
        fig.update_layout(
            yaxis={"domain": [UD_PANEL_TOP + 0.1, 1.0]},
            xaxis={"anchor": "y2"},  # the dates under the lower panel
            yaxis2={
                "domain": [0.0, UD_PANEL_TOP],
                "anchor": "x",
                "title": {"text": "ugly-duckling z", "font": {"size": 11}},
                "showgrid": False,
                "zeroline": False,
                "range": [low - pad, high + pad],
                "tickformat": ".1f",
                "tickmode": "auto",  # its own round values, never the scores' gridlines
                "nticks": 4,
            },
        )
    if threshold is not None:
        # Named in the legend, not on the line: the band and the visits' markers reach both edges of the plot,
        # and a label at either end of the line sat on them.
        line = {"color": RED, "dash": "dash"}
        fig.add_hline(y=threshold, line=line)
        fig.add_trace(
            go.Scatter(x=[None], y=[None], mode="lines", line=line, name=f"current threshold {pct(threshold)}")
        )
    models = {p.model_id for p in points}
    if len(models) > 1:
        fig.add_annotation(
            text="Scores come from different model versions: compare with care.",
            xref="paper",
            yref="paper",
            x=0,
            y=1.08,
            showarrow=False,
            font={"color": ORANGE, "size": 12},
        )
    # Dates, whole days: with one visit (or visits days apart) plotly zoomed the axis into milliseconds.
    fig.update_xaxes(tickformat="%Y-%m-%d")
    first, last = min(times), max(times)
    if last - first < MIN_TREND_SPAN:
        middle = first + (last - first) / 2
        fig.update_xaxes(range=[middle - MIN_TREND_SPAN / 2, middle + MIN_TREND_SPAN / 2])
    # Only the left axis is P(melanoma) (update_yaxes would also relabel the ugly-duckling axis).
    fig.update_layout(yaxis={"range": [0, 1], "tickformat": ".0%", "title": {"text": "P(melanoma)"}})
    # No x-axis title: the ticks are dates, and a title there touched the legend under the plot.
    style_figure(fig, title, height=360)
    if ud_values:
        fig.update_layout(height=440)  # room for the second panel
    return fig
