"""The ugly-duckling map draws thumbnails where the embedding puts each lesion, and no map below 3 lesions."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
from PIL import Image

from dashboard.ugly_duckling_map import thumbnail_uri, too_few_message, ugly_duckling_map


def lesion_table(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(n)
    return pd.DataFrame(
        {
            "image_id": [f"{i:064x}" for i in range(n)],
            "label": [f"<b>lesion {i}</b>" for i in range(n)],
            "rank": np.arange(1, n + 1),
            "p_melanoma": rng.uniform(size=n),
            "p_spread": np.full(n, 0.01),
            "ugly_duckling": rng.normal(size=n),
            "outlier": [i == 0 for i in range(n)],
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
        }
    )


def test_thumbnails_sit_where_the_embedding_places_each_lesion_and_the_outlier_is_framed():
    table = lesion_table(5)
    thumbs = {image_id: f"data:image/jpeg;base64,{i}" for i, image_id in enumerate(table.image_id)}
    fig = ugly_duckling_map(table, thumbs)
    images = fig.layout.images
    assert len(images) == 5
    # drawn from the last rank to the first: where tiles overlap, rank 1 lies on top
    last_first = table.sort_values("rank", ascending=False)
    expected = [(thumbs[i], x, y) for i, x, y in zip(last_first.image_id, last_first.x, last_first.y, strict=True)]
    assert [(im.source, im.x, im.y) for im in images] == expected
    assert all(im.xref == "x" and im.yref == "y" and im.xanchor == "center" for im in images)
    assert all(trace.mode == "markers" for trace in fig.data)  # no text labels to overlap
    frames = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(frames) == 1 and frames[0].x0 < table.x[0] < frames[0].x1  # the outlier (row 0) is framed
    hover = "".join(str(c) for trace in fig.data for c in np.ravel(trace.customdata))
    assert "&lt;b&gt;lesion 0" in hover and "<b>lesion 0" not in hover  # user text is escaped


def test_no_map_for_fewer_than_three_lesions_but_the_reason():
    for n in (1, 2):
        fig = ugly_duckling_map(lesion_table(n), {})
        assert fig.data == () and not fig.layout.images
        assert fig.layout.annotations[0].text == too_few_message(n)
        assert "at least 3" in too_few_message(n)


def test_earlier_lesions_complete_the_comparison_and_are_drawn_apart():
    earlier = np.array([[0.5, 0.5], [-0.5, 0.2]])
    fig = ugly_duckling_map(lesion_table(2), {}, references=earlier)
    by_name = {trace.name: trace for trace in fig.data}
    rings = by_name["earlier visits' lesions (compared, not ranked)"]
    assert list(rings.x) == [0.5, -0.5] and list(rings.y) == [0.5, 0.2]
    drawn = [trace for trace in fig.data if trace.x[0] is not None]  # not the legend-only entry
    assert sum(len(trace.x) for trace in drawn) == 4  # 2 of this visit + 2 earlier


def test_thumbnail_uri_is_a_small_jpeg():
    uri = thumbnail_uri(Image.new("RGB", (640, 480), (200, 120, 90)))
    assert uri.startswith("data:image/jpeg;base64,")
    thumb = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert thumb.format == "JPEG" and max(thumb.size) <= 96 and thumb.size[0] / thumb.size[1] == 640 / 480


def test_each_tile_shows_its_rank_and_the_markers_name_the_score_band():
    table = lesion_table(5).assign(p_melanoma=[0.30, 0.012, 0.003, 0.001, 0.02], p_spread=[0.0, 0.003, 0, 0, 0])
    fig = ugly_duckling_map(table, {}, threshold=0.016)
    ranks = [a.text for a in fig.layout.annotations]
    assert ranks == [f"<b>Rank {r}</b>" for r in sorted(table["rank"], reverse=True)]  # found without hovering
    by_name = {trace.name: trace for trace in fig.data}
    assert by_name["above threshold"].marker.color == "#c0392b" and len(by_name["above threshold"].x) == 2
    assert len(by_name["near threshold"].x) == 1 and len(by_name["below threshold"].x) == 2
    assert by_name["above threshold"].marker.symbol is None  # one shape: the legend matches every marker
    assert "ugly duckling (violet frame)" in by_name  # the legend says what the frame means


def test_the_map_s_hover_words_a_score_as_the_cards_do():
    # Plotly's ".1%" read "72.9%" where the card's bar read "73%".
    from dashboard.wording import pct

    table = lesion_table(4)
    table["p_melanoma"] = [0.729, 0.0123, 0.2, 0.05]
    fig = ugly_duckling_map(table, {})
    scored = [trace for trace in fig.data if trace.customdata is not None]  # not the frame's legend entry
    hover = {int(c[4]): str(c[2]) for trace in scored for c in trace.customdata}  # by rank
    assert hover == {int(rank): pct(p) for rank, p in zip(table["rank"], table.p_melanoma, strict=True)}
    assert sorted(hover.values()) == ["1.2%", "20%", "5.0%", "73%"]
    assert all("P(melanoma) %{customdata[2]}<br>" in trace.hovertemplate for trace in scored)
