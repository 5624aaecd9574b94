"""Streamlit building blocks shared by the pages: state access, disclaimer, cards, score bars."""

from __future__ import annotations

import html
from typing import Any

import streamlit as st

from dashboard.services import (
    OperatingPoint,
    ReviewState,
    ScoreBand,
    UploadProblem,
    pct,
    performance_sentence,
    score_band,
)

REVIEW_KEY = "review"
CLINICIAN_KEY = "clinician"

DISCLAIMER = (
    "**Decision support, not a diagnosis.** Scores are a model's estimate from one image; they rank which "
    "lesions to look at first. Every lesion still needs your clinical and dermoscopic assessment — "
    "a low score does not rule out melanoma."
)

# Colour-coded cards: containers get the CSS class st-key-<key>; the prefix carries the band.
_CSS = """
<style>
[class*="st-key-card-above-"] { border-left: 6px solid #c0392b !important; }
[class*="st-key-card-near-"] { border-left: 6px solid #d9822b !important; }
[class*="st-key-card-below-"] { border-left: 6px solid #2e8b57 !important; }
[class*="st-key-card-saved-"] { border-left: 6px solid #8a94a0 !important; }
.triage-bar { position: relative; height: 14px; background: #eef0f3; border-radius: 7px;
  margin: 4px 0 2px 0; }
.triage-bar .fill { position: absolute; left: 0; top: 0; bottom: 0; border-radius: 7px; }
.triage-bar .ci { position: absolute; top: 3px; bottom: 3px; background: rgba(0,0,0,.28);
  border-radius: 3px; }
.triage-bar .thr { position: absolute; top: -4px; bottom: -4px; width: 2px; background: #1b1b1b; }
.triage-scale { position: relative; height: 1.1rem; font-size: .72rem; color: #6b7480; }
.triage-scale span { position: absolute; top: 0; white-space: nowrap; }
.triage-p { font-size: 1.6rem; font-weight: 650; line-height: 1.1; }
.triage-p small { font-size: .85rem; font-weight: 400; color: #5b6470; }
</style>
"""


def inject_css() -> None:
    st.html(_CSS)


def review_state() -> ReviewState:
    if REVIEW_KEY not in st.session_state:
        st.session_state[REVIEW_KEY] = ReviewState()
    return st.session_state[REVIEW_KEY]


def reset_review() -> None:
    """Start over: a new, empty review (the caller has confirmed that unsaved work may go)."""
    old = st.session_state.get(REVIEW_KEY)
    generation = old.uploader_generation + 1 if old else 0
    st.session_state[REVIEW_KEY] = ReviewState(uploader_generation=generation)


def clinician() -> str:
    return str(st.session_state.get(CLINICIAN_KEY) or "").strip()


def disclaimer(container: Any = None) -> None:
    (container or st).info(DISCLAIMER, icon=":material/info:")


def performance_note(op: OperatingPoint) -> None:
    st.caption(
        performance_sentence(op)
        + " The model learned from melanoma-enriched archives, so its P(melanoma) is a score for ranking and "
        "for comparison with the threshold — not this lesion's risk in a screening population. "
        "See the **Model** page for the validation figures."
    )


def problem_card(problem: UploadProblem) -> None:
    text = f"**{html.escape(problem.filename)}** — {problem.reason}"
    if problem.kind == "error":
        st.error(text, icon=":material/broken_image:")
    elif problem.kind == "duplicate":
        st.warning(text, icon=":material/content_copy:")
    else:
        st.info(text, icon=":material/history:")


def score_bar(p: float, threshold: float, spread: float | None, band: ScoreBand | None = None) -> None:
    """P(melanoma) as a number and a bar: fill to p, dark band = uncertainty, black tick = threshold."""
    band = band or score_band(p, threshold, spread or 0.0)
    colour = {"red": "#c0392b", "orange": "#d9822b", "green": "#2e8b57"}[band.colour]
    s = float(spread or 0.0)
    lo, hi = max(0.0, p - 2 * s), min(1.0, p + 2 * s)
    spread_txt = f"± {100 * s:.1f} pts (TTA spread)" if spread is not None else ""
    label_shift = 100 * min(max(threshold, 0.1), 0.9)  # keep the threshold label inside the bar's width
    title = f"P(melanoma) {pct(p, 1)}; uncertainty {pct(lo)}–{pct(hi)}; threshold {pct(threshold)}"
    st.markdown(
        f"""<div class="triage-p">{pct(p)} <small>P(melanoma) {spread_txt}</small></div>
<div class="triage-bar" title="{title}">
<div class="fill" style="width:{100 * p:.1f}%; background:{colour}; opacity:.85"></div>
<div class="ci" style="left:{100 * lo:.1f}%; width:{max(0.6, 100 * (hi - lo)):.1f}%"></div>
<div class="thr" style="left:calc({100 * threshold:.1f}% - 1px)"></div></div>
<div class="triage-scale"><span style="left:0">0%</span><span style="right:0">100%</span>
<span style="left:{100 * threshold:.1f}%; transform:translateX(-{label_shift:.0f}%)">threshold {pct(threshold)}</span>
</div>""",
        unsafe_allow_html=True,
    )


def unsaved_guard(active: bool) -> None:
    """Ask the browser to confirm before a reload/close loses an unsaved review."""
    flag = "true" if active else "false"
    st.html(
        f"""<script>
(function() {{
  const w = window.parent || window;
  w.__triageUnsaved = {flag};
  if (!w.__triageGuard) {{
    w.__triageGuard = true;
    w.addEventListener("beforeunload", function (e) {{
      if (w.__triageUnsaved) {{ e.preventDefault(); e.returnValue = ""; }}
    }});
  }}
}})();
</script>""",
        unsafe_allow_javascript=True,
    )


def sidebar_status(model_line: str | None) -> None:
    """Shown on every page: who is under review, whether work is unsaved, which model scores."""
    state = review_state()
    with st.sidebar:
        st.text_input(
            "Reviewing clinician",
            key=CLINICIAN_KEY,
            placeholder="your name",
            help="Recorded with every saved visit and decision.",
        )
        if state.patient is not None:
            st.markdown(f"**Current patient**  \n{html.escape(state.patient.describe())}")
            if state.is_saved:
                st.success(f"Saved as visit {state.saved_visit_id}.", icon=":material/check_circle:")
            elif state.has_unsaved_work:
                st.warning(
                    state.unsaved_summary() + " Return to **Patient review** to save.",
                    icon=":material/warning:",
                )
        if model_line:
            st.caption(f"Model: {model_line}")
        st.caption("Decision support only — not a diagnosis.")
        unsaved_guard(state.has_unsaved_work)
