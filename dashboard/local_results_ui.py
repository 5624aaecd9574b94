"""The Model page's "In this clinic" section: how the loaded model did on the clinic's own patients, from the
histology results recorded in Case history. The figures are computed in local_results.py."""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from dashboard import local_results, resources
from dashboard.errors import STORE_ERRORS, log_swallowed
from dashboard.report_data import model_facts

logger = logging.getLogger(__name__)
AUDITED = "local_results_audited"  # one audit entry per session for reading every outcome


def panel(config: dict[str, Any], validation: dict[str, Any] | None) -> None:
    facts = model_facts(config, validation)
    if facts is None:
        st.info("No model installed: nothing to compare.")
        return
    store, problem = resources.try_get_user_store()
    if store is None:
        st.info(f"This clinic's results cannot be read now ({problem}).", icon=":material/info:")
        return
    try:
        rows = store.outcomes()
        if not st.session_state.get(AUDITED):
            store.record_view(local_results.AUDIT_ACTION, None, {"page": "model", "rows": len(rows)})
            st.session_state[AUDITED] = True
    except STORE_ERRORS as exc:
        log_swallowed(logger, "reading the outcomes for the Model page", exc)
        st.warning("This clinic's results cannot be read now: the case store did not answer.")
        return
    results = local_results.local_results(rows, facts.scored, facts.threshold)
    st.markdown(
        "The figures above come from public archives, and a clinic unlike them may see a weaker ranking. "
        "Here is what the model did on **your** patients, from the histology results recorded in Case "
        "history (each lesion's last scored image up to the visit that decided its biopsy or excision)."
    )
    if not results.lesions:
        st.info(
            "No histology result yet for a lesion scored by this model. Record results in Case history › "
            "Histology & outcomes; this section then compares them with the validation figures.",
            icon=":material/science:",
        )
        if results.other_models:
            st.caption(local_results.summary_sentence(results))
        return
    (st.caption if results.enough else st.warning)(local_results.summary_sentence(results))
    # A static table: its text wraps, where a data frame's five columns needed sideways scrolling at 1440 px.
    st.table(local_results.comparison_table(results, validation, config).set_index("measure"))
    st.caption(
        "Only lesions someone chose to excise or biopsy have a result, so the lesions that were not melanoma "
        "are the suspicious ones, not all moles; lesions without a result count as not melanoma in their "
        "visit's ranking. Intervals are 95%: Wilson for counts, patient bootstrap for the card's rankings."
    )
