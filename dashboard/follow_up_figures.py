"""A followed lesion's score over visits with its uncertainty band and score-rise flags (plotly, no Streamlit).

Built on ``figures.score_trend`` (P(melanoma) 0–100% on the left axis, the ugly-duckling z on its own right
axis, the threshold line), adding the band of ± 2 × the TTA spread stored with each score, the same ± the
ranked-scores chart draws, and a marker on each visit whose score rose by more than the margin.
"""

from __future__ import annotations

import plotly.graph_objects as go

from dashboard.figures import RED, score_trend
from dashboard.follow_up import LesionHistory
from dashboard.score_rise import RiseMargin, rises_by_visit
from dashboard.wording import pct, uncertainty_interval

BAND_NAME = "range across orientations"


NICE_TOPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def zoomed_top(values: list[float], threshold: float | None) -> float:
    """The smallest of NICE_TOPS above every value and the threshold (with a little headroom)."""
    needed = 1.15 * max([*values, threshold or 0.0, 1e-9])
    return next((top for top in NICE_TOPS if top >= needed), 1.0)


def lesion_trend(
    lesion: LesionHistory,
    threshold: float | None,
    margin: RiseMargin,
    title: str | None = None,
    zoom: bool = False,
) -> go.Figure:
    """The lesion's P(melanoma) at each scored visit, its band, the threshold and the rise flags.

    ``zoom``: the P(melanoma) axis ends just above the band and the threshold instead of at 100% (the
    calibrated scores are often a few per cent, flat on a 0–100% axis); the axis title says so.
    """
    scored = [v for v in lesion.visits if v.p_melanoma is not None]
    fig = score_trend(scored, threshold, title)
    if not scored:
        return fig
    times = [v.visit_time for v in scored]
    # A score saved without its spread gets no width: the band does not invent an uncertainty.
    lower, upper = zip(*(uncertainty_interval(v.p_melanoma, v.p_spread) for v in scored), strict=True)
    band = (
        go.Scatter(x=times, y=lower, mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"),
        go.Scatter(
            x=times,
            y=upper,
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor="rgba(31, 95, 139, 0.18)",
            name=BAND_NAME,
            hoverinfo="skip",
        ),
    )
    rises = rises_by_visit(lesion, margin)
    flagged = [v for v in scored if v.visit_id in rises]
    extra = list(band)
    if flagged:
        extra.append(
            go.Scatter(
                x=[v.visit_time for v in flagged],
                y=[v.p_melanoma for v in flagged],
                mode="markers",
                name=f"score rose ({margin.describe()})",
                marker={"size": 20, "symbol": "circle-open", "color": RED, "line": {"width": 3}},
                hovertext=[
                    f"{pct(rises[v.visit_id].before)} → {pct(rises[v.visit_id].after)}"
                    + (" · may be noise" if rises[v.visit_id].may_be_noise else "")
                    for v in flagged
                ],
                hovertemplate="%{x|%Y-%m-%d}<br>score rose %{hovertext}<extra></extra>",
            )
        )
    # The band goes under the line and markers: plotly draws traces in order.
    fig.add_traces(extra)
    count = len(extra)
    fig.data = fig.data[-count:][:2] + fig.data[:-count] + fig.data[-count:][2:]
    if zoom:
        top = zoomed_top(upper, threshold)
        if top < 1.0:
            fig.update_layout(
                yaxis={
                    "range": [0, top],
                    "tickformat": ".1%" if top <= 0.05 else ".0%",
                    "title": {"text": f"P(melanoma), axis zoomed to 0–{top:.0%}"},
                }
            )
    return fig
