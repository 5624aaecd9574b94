"""What a lesion card writes beside its score (dashboard/lesion_views.py)."""

from __future__ import annotations

from dashboard.lesion_views import _ud_text


def test_a_typical_ugly_duckling_score_is_never_written_minus_zero():
    assert "**0.0** — typical for this patient" in _ud_text(-0.04, 2.0)
    assert "**-0.6**" in _ud_text(-0.6, 2.0)
    assert "**2.4** — looks unlike this patient's other lesions" in _ud_text(2.4, 2.0)
    assert _ud_text(float("nan"), 2.0).startswith("Ugly-duckling comparison: not computed")
