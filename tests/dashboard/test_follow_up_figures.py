"""The followed lesion's trend: band of ± 2 × the stored spread, correct axes, rise markers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.follow_up import LesionHistory, LesionVisit
from dashboard.follow_up_figures import BAND_NAME, lesion_trend
from dashboard.score_rise import RiseMargin

START = datetime(2026, 1, 1, tzinfo=UTC)


def _lesion(scores: list[tuple[float | None, float | None]], ud: float | None = 1.4) -> LesionHistory:
    visits = tuple(
        LesionVisit(
            visit_id=10 + i,
            visit_number=i + 1,
            visit_time=START + timedelta(days=180 * i),
            image=None,  # not drawn
            p_melanoma=p,
            p_spread=spread,
            ugly_duckling=ud,
            model_id="m1",
            rank=1,
        )
        for i, (p, spread) in enumerate(scores)
    )
    return LesionHistory(lesion_id=3, number=1, label="back", site="torso", visits=visits)


def test_band_is_two_spreads_either_side_clipped_to_the_axis_and_drawn_under_the_line():
    fig = lesion_trend(_lesion([(0.02, 0.005), (0.03, 0.02), (0.5, None)]), threshold=0.0156, margin=RiseMargin())
    lower, upper = fig.data[0], fig.data[1]
    assert upper.name == BAND_NAME and upper.fill == "tonexty"
    assert list(upper.y) == pytest.approx([0.03, 0.07, 0.5])  # no spread recorded: no width invented
    assert list(lower.y) == pytest.approx([0.01, 0.0, 0.5])  # 0.03 − 0.04 clipped at 0
    names = [t.name for t in fig.data]
    assert names.index(BAND_NAME) < names.index("P(melanoma)")
    assert fig.layout.yaxis.tickformat == ".0%" and tuple(fig.layout.yaxis.range) == (0, 1)
    assert fig.layout.yaxis2.overlaying is None and "ugly-duckling" in fig.layout.yaxis2.title.text
    assert any(shape.y0 == pytest.approx(0.0156) for shape in fig.layout.shapes)  # the threshold line


def test_rise_marker_only_on_the_visit_whose_score_rose_beyond_the_margin():
    fig = lesion_trend(_lesion([(0.02, 0.002), (0.025, 0.002), (0.2, 0.002)]), 0.0156, RiseMargin())
    marker = next(t for t in fig.data if t.name and t.name.startswith("score rose"))
    assert list(marker.x) == [START + timedelta(days=360)]
    assert "may be noise" not in marker.hovertext[0]
    quiet = lesion_trend(_lesion([(0.02, 0.002), (0.025, 0.002)]), 0.0156, RiseMargin())
    assert not any(t.name and t.name.startswith("score rose") for t in quiet.data)


def test_unscored_visits_are_left_out_and_no_scores_gives_the_empty_message():
    fig = lesion_trend(_lesion([(None, None), (0.2, 0.01)]), 0.0156, RiseMargin())
    assert len(fig.data[0].x) == 1
    empty = lesion_trend(_lesion([(None, None)]), 0.0156, RiseMargin())
    assert not empty.data and "No scores" in empty.layout.annotations[0].text


def test_zoomed_axis_covers_the_band_and_the_threshold_and_says_so():
    lesion = _lesion([(0.01, 0.002), (0.031, 0.004)])
    full = lesion_trend(lesion, 0.0156, RiseMargin())
    assert tuple(full.layout.yaxis.range) == (0, 1)
    zoomed = lesion_trend(lesion, 0.0156, RiseMargin(), zoom=True)
    low, top = zoomed.layout.yaxis.range
    assert low == 0 and 0.031 + 2 * 0.004 < top < 0.1
    assert "zoomed to 0–5%" in zoomed.layout.yaxis.title.text
    high = lesion_trend(_lesion([(0.4, 0.05), (0.9, 0.1)]), 0.0156, RiseMargin(), zoom=True)
    assert tuple(high.layout.yaxis.range) == (0, 1) and "zoomed" not in high.layout.yaxis.title.text


def test_the_date_axis_shows_days_even_for_one_visit():
    """One visit (or visits days apart) made plotly zoom the date axis into milliseconds ("11:59:59.9995")."""
    one = lesion_trend(_lesion([(0.02, 0.005)]), 0.0156, RiseMargin())
    assert one.layout.xaxis.tickformat == "%Y-%m-%d"
    start, end = (datetime.fromisoformat(str(x)) for x in one.layout.xaxis.range)
    assert end - start == timedelta(days=90)
    spread_out = lesion_trend(_lesion([(0.02, 0.005), (0.03, 0.005), (0.04, 0.005)]), 0.0156, RiseMargin())
    assert spread_out.layout.xaxis.range is None  # visits months apart: plotly's own range
