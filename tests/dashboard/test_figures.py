"""Figure builders, checked on the plotly objects they return (no Streamlit)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from dashboard.figures import UD_TREND_NAME, score_trend
from dashboard.store import TrendPoint


def _points(ud: list[float | None]) -> list[TrendPoint]:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return [
        TrendPoint(
            visit_id=i + 1,
            visit_time=start + dt.timedelta(days=180 * i),
            p_melanoma=0.02 + 0.01 * i,
            triage_score=0.5,
            ugly_duckling=z,
            rank=1,
            model_id="m1",
        )
        for i, z in enumerate(ud)
    ]


def test_trend_draws_the_ugly_duckling_score_on_its_own_axis_in_its_own_unit():
    fig = score_trend(_points([0.1, 2.7, -0.6]), threshold=0.024)
    p_axis, z_axis = fig.layout.yaxis, fig.layout.yaxis2
    assert p_axis.title.text == "P(melanoma)" and p_axis.tickformat == ".0%" and tuple(p_axis.range) == (0, 1)
    # The z axis is not a probability: not labelled P(melanoma), not in per cent, not clipped to 0–1.
    assert "ugly-duckling" in z_axis.title.text and "%" not in (z_axis.tickformat or "")
    assert z_axis.range[0] <= -0.6 and z_axis.range[1] >= 2.7
    ud_trace = next(t for t in fig.data if t.name == UD_TREND_NAME)
    assert ud_trace.yaxis == "y2"
    # A panel of its own under the scores, not overlaid on them: a z of 2.1 sat at "90%" beside a score of 50%.
    assert z_axis.overlaying is None and z_axis.domain[1] < p_axis.domain[0]
    assert fig.layout.xaxis.anchor == "y2"  # the dates under the lower panel
    assert next(t for t in fig.data if t.name == "P(melanoma)").yaxis in (None, "y")


def test_trend_z_axis_picks_its_own_round_ticks():
    # Its own round values, never the P(melanoma) axis's gridlines (values such as 0.21 or 0.57 that the
    # one-decimal labels misname). The browser test reads the drawn ticks.
    fig = score_trend(_points([0.55, 1.5]), threshold=0.016)
    assert fig.layout.yaxis2.tickmode == "auto"


def test_trend_without_ugly_duckling_scores_has_one_axis():
    fig = score_trend(_points([None, None]), threshold=0.024)
    assert fig.layout.yaxis.title.text == "P(melanoma)"
    assert [t.name for t in fig.data] == ["P(melanoma)", "current threshold 2.4%"]


def test_chart_titles_start_below_the_plotly_toolbar():
    from dashboard.figures import MODEBAR_PX

    fig = score_trend(_points([0.1, 0.2]), threshold=0.024, title="Lesion #1")
    title = fig.layout.title
    assert title.yref == "container" and title.yanchor == "top" and title.y == 1
    assert title.pad.t >= MODEBAR_PX >= 30  # the toolbar's row is left free
    assert fig.layout.margin.t >= title.pad.t + title.font.size  # and the plot starts below the title


def test_trend_names_the_threshold_in_the_legend_not_over_the_plot():
    # A label on the line sat over the uncertainty band and the first visit's marker at the plot's left edge
    # (the band and the markers span the plot from edge to edge): the legend names the dashed line instead.
    fig = score_trend(_points([0.1, 0.2]), threshold=0.024)
    assert not [a.text for a in fig.layout.annotations if "threshold" in (a.text or "")]
    [line] = [s for s in fig.layout.shapes if s.y0 == s.y1 == 0.024]
    [entry] = [t for t in fig.data if t.name == "current threshold 2.4%"]
    assert (entry.line.color, entry.line.dash) == (line.line.color, line.line.dash)  # drawn as the line is
    assert entry.showlegend is not False and all(x is None for x in entry.x)  # a legend entry, no points


def test_the_trend_s_hover_words_a_score_as_the_cards_do():
    # Plotly's ".1%" read "72.9%" where the cards and the report read "73%".
    points = [replace(p, p_melanoma=s) for p, s in zip(_points([None, None]), (0.729, 0.0123), strict=True)]
    trace = next(t for t in score_trend(points, threshold=0.016).data if t.name == "P(melanoma)")
    assert [row[3] for row in trace.customdata] == ["73%", "1.2%"]
    assert "P(melanoma) %{customdata[3]}<br>" in trace.hovertemplate
