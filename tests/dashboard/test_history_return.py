"""Back from a saved lesion's Saliency page, Case history opens the same visit (not the newest) and scrolls to
that lesion's card once (issue 12: the page must not jump to the top, or to another visit)."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from test_history_outcomes_page import IDENT, _history, save_visit

from dashboard.lesion_views import RETURN_TO_SAVED_CARD

pytestmark = pytest.mark.timeout(300)


def _scroll_scripts(at) -> list[str]:
    return [str(e.proto.body) for e in at.get("html") if "scrollIntoView" in str(e.proto.body)]


def test_back_from_saliency_opens_the_same_visit_at_the_lesion(app_env):
    with app_env.store() as store:
        patient_id = save_visit(store)
        save_visit(store)  # a second, newer visit: the page opens the newest by default
        first, newer = store.patient_timeline(patient_id).visits
        older_lesion = store.load_visit(first.id).lesions[1]
    at = _history(app_env, "dr.back", "clinician")
    assert at.selectbox(key="history_visit").value.id == newer.id

    # The card's "Inspect saliency" link of the older visit's second lesion (AppTest cannot click a page link).
    at.query_params.update({"visit": str(first.id), "lesion": older_lesion.image.sha256[:16]})
    at.switch_page("views/saliency.py").run()
    assert not at.exception, at.exception
    back = next(link for link in at.page_link if link.label == "Back to case history")
    target = dict(parse_qsl(back.proto.query_string))
    assert target == {"patient_id": str(patient_id), "visit": str(first.id)}
    assert at.session_state[RETURN_TO_SAVED_CARD] == older_lesion.image.id

    at.query_params.clear()
    at.query_params.update(target)
    at.switch_page("views/history.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="history_visit").value.id == first.id  # the visit the clinician came from
    assert any(f".st-key-card-saved-{older_lesion.image.id}" in s for s in _scroll_scripts(at))
    assert RETURN_TO_SAVED_CARD not in at.session_state

    at.run()  # once: a later rerun leaves the page where the clinician scrolled
    assert _scroll_scripts(at) == []
    assert IDENT in at.session_state["history_search"]
