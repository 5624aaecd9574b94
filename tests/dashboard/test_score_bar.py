"""The score bar's scale labels: the threshold's label never lies on top of an end label."""

from __future__ import annotations

import re

import pytest

from dashboard.components import score_bar_html


def _labels(html: str) -> list[str]:
    scale = html.split('class="triage-scale">', 1)[1]
    return re.findall(r"<span[^>]*>([^<]*)</span>", scale)


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (0.016, ["100%", "threshold 1.6%"]),  # the shipped model's threshold: "0%" would be covered
        (0.5, ["0%", "100%", "threshold 50%"]),
        (0.9, ["0%", "threshold 90%"]),
    ],
)
def test_end_labels_give_way_to_the_threshold_label(threshold, expected):
    assert _labels(score_bar_html(0.3, threshold, 0.02)) == expected


def test_the_bar_still_shows_score_uncertainty_and_threshold():
    html = score_bar_html(0.3, 0.016, 0.02)
    assert 'class="fill" style="width:30.0%' in html
    assert 'class="ci" style="left:26.0%; width:8.0%' in html  # ± 2 spreads
    assert 'class="thr" style="left:calc(1.6% - 1px)' in html
    assert "(26%–34% across orientations)" in html


def test_the_bar_says_its_interval_in_words_and_names_itself_for_screen_readers():
    html = score_bar_html(0.3, 0.016, 0.02)
    assert "P(melanoma) (26%–34% across orientations)" in html  # not only in a hover title
    assert 'role="img" aria-label="P(melanoma) 30% (26%–34% across orientations); threshold 1.6%"' in html


def test_the_bar_and_the_reasons_word_one_score_alike():
    # The bar read "73%" and the reasons beside it "72.9%".
    from model.triage import _reasons

    html = score_bar_html(0.729, 0.016, 0.002)
    assert html.startswith('<div class="triage-p">73% <small>')
    assert "P(melanoma) 73% is above the operating threshold 1.6%" in _reasons(0.729, 0.002, 0.3, 6, 0.016, 2.5, 1)
