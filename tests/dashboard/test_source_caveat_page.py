"""On the review page, a lesion card says when its image comes from another camera or resolution than the
patient's other images (a 200×150 HAM10000 photo among 512 px ISIC 2020 images), and only that card; the
caveat is saved with that score and shown again in Case history."""

from __future__ import annotations

from tests.dashboard.test_app_pages import PATIENT, review_to_results, shown, start


def test_the_odd_source_card_carries_the_caveat(app_env, patient_lesions, other_lesions):
    at = start()
    review_to_results(at, [*patient_lesions[:4], other_lesions[0]])
    state = at.session_state["review"]
    small = next(sha for sha, image in state.images.items() if image.filename == other_lesions[0].name)
    assert list(state.source_caveats) == [small]
    warnings = [shown(w.value) for w in at.warning if "Image source differs" in w.value]
    assert len(warnings) == 1
    assert "200×150 px where the others are about 512×512 px" in warnings[0]
    assert "may reflect the camera or resolution, not the lesion" in warnings[0]

    at.button(key="save_visit").click().run()
    assert not at.exception, at.exception
    visit = app_env.store().load_visit(state.saved_visit_id)
    saved = {les.image.sha256: les.prediction.source_caveat for les in visit.lesions}
    assert saved.pop(small) == state.source_caveats[small] and set(saved.values()) == {""}
    at.switch_page("views/history.py").run()
    at.text_input(key="history_search").input(PATIENT).run()
    assert not at.exception, at.exception
    assert [shown(w.value) for w in at.warning if "Image source differs" in w.value] == warnings
