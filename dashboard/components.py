"""Streamlit building blocks shared by the pages: state access, disclaimer, cards, score bars."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from dashboard import auth_ui, body_map_ui
from dashboard.operating_point import OperatingPoint, performance_sentence
from dashboard.review_state import ReviewState
from dashboard.session import signed_in
from dashboard.textsafe import literal
from dashboard.uploads import UploadProblem
from dashboard.wording import ScoreBand, pct, score_band, score_interval, uncertainty_interval

__all__ = ["literal"]  # the one output-safety helper, for the pages: see dashboard/textsafe.py

REVIEW_KEY = "review"
IDLE_CHECK_S = 60

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
[class*="st-key-patient-banner"] { background: #eef4fa; border-left: 6px solid #1f5f8b; border-radius: 6px;
  padding: .4rem .8rem; }
.triage-bar { position: relative; height: 14px; background: #eef0f3; border-radius: 7px;
  margin: 4px 0 2px 0; box-shadow: inset 0 0 0 1px #7d8793; }
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


def metric_row(*, border: bool = False) -> Any:
    """A row for st.metric that wraps onto a second line when the page is too narrow for all of them (1024 px
    with the sidebar open): st.columns gives each metric a fixed share and cuts a longer value or label off
    with an ellipsis ("80…"); in a horizontal container each metric keeps at least its own width."""
    return st.container(horizontal=True, gap="medium", border=border)


# Review widgets drawn by the last complete run of the review page, and those bound in this run so far.
_BOUND_DRAWN = "review_bound_drawn"
_BOUND_THIS_RUN = "review_bound_this_run"
_BOUND_SHOWN = "review_bound_shown"  # the drawn set, kept for this run when the last run was the review page's


def bind(key: str, value: object) -> str:
    """A widget key whose value is the review model's `value` (the source of truth; the widget takes no default).

    The value is written into the widget's state whenever the browser may not show it: the widget was not
    drawn by the last complete run of the review page (first drawn, back from another page, a run cut short),
    or its state differs from the model (a callback normalised or refused the entry). A widget left in
    session state from before a page switch (Streamlit may keep it, e.g. after a page that ended with
    st.stop()) is otherwise drawn in the browser with its default (no decision, empty text) while the server
    still holds the old value, and the next click would send that blank back through the widget's on_change
    into the review. Not written when the browser already shows the model's value: a rerun must not replace
    text being typed into the box.
    """
    shown = key in st.session_state.get(_BOUND_SHOWN, ())
    if not shown or key not in st.session_state or st.session_state[key] != value:
        st.session_state[key] = value
    st.session_state.setdefault(_BOUND_THIS_RUN, set()).add(key)
    return key


def page_run_started(on_review_page: bool) -> None:
    """Once at the start of every full run (any page): which review widgets the browser holds now."""
    drawn = st.session_state.pop(_BOUND_DRAWN, set())
    st.session_state[_BOUND_SHOWN] = drawn if on_review_page else set()
    st.session_state[_BOUND_THIS_RUN] = set()


def review_widgets_drawn() -> None:
    """At the end of a complete run of the review page: its bound widgets are now in the browser."""
    st.session_state[_BOUND_DRAWN] = st.session_state.pop(_BOUND_THIS_RUN, set())


def review_state() -> ReviewState:
    if REVIEW_KEY not in st.session_state:
        st.session_state[REVIEW_KEY] = ReviewState()
    return st.session_state[REVIEW_KEY]


def reset_review() -> None:
    """Start over: a new, empty review (the caller has confirmed that unsaved work may go)."""
    old = st.session_state.get(REVIEW_KEY)
    generation = old.uploader_generation + 1 if old else 0
    st.session_state[REVIEW_KEY] = ReviewState(uploader_generation=generation)
    # The body map's last clicked region and message belong to the review that clicked it, not the next one.
    for key in (body_map_ui.LAST_REGION, body_map_ui.NOTICE):
        st.session_state.pop(key, None)


def clinician() -> str:
    """The reviewing clinician: the signed-in user's username (never typed in)."""
    user = signed_in()
    return user.username if user else ""


def disclaimer(container: Any = None) -> None:
    (container or st).info(DISCLAIMER, icon=":material/info:")


def performance_note(op: OperatingPoint, mole_check: str | None = None) -> None:
    st.caption(
        performance_sentence(op)
        + (f" {mole_check}" if mole_check else "")
        + " The model learned from melanoma-enriched archives, so its P(melanoma) is a score for ranking and "
        "for comparison with the threshold — not this lesion's risk in a screening population. "
        "See the **Model** page for the validation figures."
    )


# How each kind of upload problem is shown: (Streamlit alert, icon).
PROBLEM_LOOKS: dict[str, tuple[str, str]] = {
    "error": ("error", ":material/broken_image:"),
    "duplicate": ("warning", ":material/content_copy:"),
    "other_patient": ("warning", ":material/person_alert:"),
    "skipped": ("info", ":material/description:"),
    "notice": ("info", ":material/history:"),
}


def problem_card(problem: UploadProblem) -> None:
    alert, icon = PROBLEM_LOOKS.get(problem.kind, PROBLEM_LOOKS["notice"])
    getattr(st, alert)(f"**{literal(problem.filename)}** — {literal(problem.reason)}", icon=icon)


END_LABEL_ROOM = 0.25  # how far (as a share of the bar) the threshold's label reaches from its tick


def score_bar(p: float, threshold: float, spread: float | None, band: ScoreBand | None = None) -> None:
    """P(melanoma) as a number and a bar: fill to p, dark band = uncertainty, black tick = threshold."""
    st.markdown(score_bar_html(p, threshold, spread, band), unsafe_allow_html=True)


def score_bar_html(p: float, threshold: float, spread: float | None, band: ScoreBand | None = None) -> str:
    band = band or score_band(p, threshold, spread or 0.0)
    # At least 3:1 against the track (WCAG 1.4.11): the orange of the cards' edges is 2.6:1 on it.
    colour = {"red": "#c0392b", "orange": "#a85a12", "green": "#2e8b57"}[band.colour]
    s = float(spread or 0.0)
    lo, hi = uncertainty_interval(p, s)
    interval = score_interval(p, spread)
    label_shift = 100 * min(max(threshold, 0.1), 0.9)  # keep the threshold label inside the bar's width
    title = f"P(melanoma) {pct(p)} ({interval}); threshold {pct(threshold)}"
    # The scale's end labels give way to the threshold's label where it would overlap them (a threshold of a
    # few percent, as at screening prevalence, sits on top of "0%").
    ends = ('<span style="left:0">0%</span>' if threshold >= END_LABEL_ROOM else "") + (
        '<span style="right:0">100%</span>' if threshold <= 1 - END_LABEL_ROOM else ""
    )
    return f"""<div class="triage-p">{pct(p)} <small>P(melanoma) ({interval})</small></div>
<div class="triage-bar" title="{title}" role="img" aria-label="{title}">
<div class="fill" style="width:{100 * p:.1f}%; background:{colour}; opacity:.85"></div>
<div class="ci" style="left:{100 * lo:.1f}%; width:{max(0.6, 100 * (hi - lo)):.1f}%"></div>
<div class="thr" style="left:calc({100 * threshold:.1f}% - 1px)"></div></div>
<div class="triage-scale">{ends}
<span style="left:{100 * threshold:.1f}%; transform:translateX(-{label_shift:.0f}%)">threshold {pct(threshold)}</span>
</div>"""


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


def scroll_into_view(selector: str) -> None:
    """Bring the element that the CSS selector finds on screen once it is drawn. Streamlit starts a page it
    opens at the top: back from another page, a lesion low in the gallery was screens away. Tried again
    half a second later, after the pictures above it have loaded and moved it down, unless the clinician
    has scrolled in between (the page must not jump back under their hand)."""
    st.html(
        f"""<script>
(function() {{
  const d = (window.parent || window).document;
  let waited = 0;
  (function look() {{
    const el = d.querySelector({json.dumps(selector)});
    if (!el) {{ if ((waited += 100) < 5000) setTimeout(look, 100); return; }}
    el.style.scrollMarginTop = "4.5rem";  // below Streamlit's header bar, which lies over the page
    const main = d.querySelector('[data-testid="stMain"]') || d.scrollingElement || d.documentElement;
    el.scrollIntoView({{block: "start"}});
    const scrolled = main.scrollTop;
    setTimeout(() => {{ if (main.scrollTop === scrolled) el.scrollIntoView({{block: "start"}}); }}, 500);
  }})();
}})();
</script>""",
        unsafe_allow_javascript=True,
    )


def patient_banner(identifier: str, detail: str, *, role: str) -> None:
    """Which patient this page is about, unmistakably: a tinted band with the identifier large, at the top."""
    with st.container(key=f"patient-banner-{role}"):
        st.markdown(f"##### :material/person: {role}: {literal(identifier)}")
        if detail:
            st.caption(literal(detail))


def sidebar_status(
    model_line: str | None, user: Any = None, accounts: Any = None, on_review_page: bool = False
) -> None:
    """Shown on every page: who is signed in, who is under review, whether work is unsaved, which model."""
    state = review_state()
    with st.sidebar:
        if user is not None:
            with st.container(key="signed_in_as"):
                st.markdown(f"Signed in as **{literal(user.label)}**  \n{literal(user.role)}")
                st.button(
                    "Sign out",
                    key="sign_out",
                    icon=":material/logout:",
                    type="tertiary",
                    on_click=auth_ui.sign_out,
                    args=(accounts,),
                )
                if accounts is not None:
                    _change_password(user, accounts)
        if state.patient is not None:
            st.markdown(f"**Under review**  \n{literal(state.patient.describe(state.visit_day()))}")
            if state.is_saved:
                st.success(f"Saved as {state.saved_visit_label()}.", icon=":material/check_circle:")
            else:
                line = state.sidebar_status(on_review_page)
                if line:
                    st.warning(literal(line), icon=":material/warning:")
        if model_line:
            st.caption(f"Model: {model_line}")
        st.caption("Decision support only — not a diagnosis.")
        unsaved_guard(state.has_unsaved_work)


def _change_password(user: Any, accounts: Any) -> None:
    from dashboard.auth import LoginFailed
    from dashboard.passwords import MIN_PASSWORD_LENGTH

    with (
        st.popover("Change my password", icon=":material/password:"),
        st.form("change_password", clear_on_submit=True, border=False),
    ):
        current = st.text_input("Current password", type="password", key="pw_current")
        new = st.text_input(f"New password (at least {MIN_PASSWORD_LENGTH} characters)", type="password", key="pw_new")
        again = st.text_input("New password again", type="password", key="pw_again")
        if st.form_submit_button("Change password"):
            if new != again:
                st.error("The two new passwords differ.")
                return
            try:
                renewed = accounts.change_own_password(user, current, new)
            except (LoginFailed, ValueError) as exc:
                st.error(literal(exc))
            else:
                auth_ui.renew(renewed)
                st.success("Password changed. Your other sessions (other browsers, other devices) have ended.")


def hardening() -> None:
    """What the app itself can add against framing and outside requests (the reverse proxy should also
    send X-Frame-Options / CSP headers, see the README): refuse to run inside a frame of another site, and
    a Content-Security-Policy that only lets the page load from this server."""
    st.html(
        """<script>
(function() {
  const w = window.parent || window;
  const d = w.document;
  if (w.top !== w.self) {  // framed by another page: show nothing, and take the whole window instead
    d.documentElement.style.display = "none";
    try { w.top.location = w.self.location.href; } catch (e) {}
  }
  if (!d.getElementById("triage-csp")) {
    const m = d.createElement("meta");
    m.id = "triage-csp";
    m.httpEquiv = "Content-Security-Policy";
    m.content = "default-src 'self' data: blob:; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; " +
      "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; " +
      "connect-src 'self' ws: wss: data: blob:; frame-src 'self' data: blob:; object-src 'none'; " +
      "base-uri 'self'; form-action 'self'";
    d.head.appendChild(m);
  }
})();
</script>""",
        unsafe_allow_javascript=True,
    )


def idle_watch() -> None:
    """Re-check the idle limit every minute, so an unattended screen is cleared without a click."""

    @st.fragment(run_every=IDLE_CHECK_S)
    def _check() -> None:
        if auth_ui.idle_expired():
            st.rerun()

    _check()


def record_read_or_stop(store: Any, action: str, patient_id: int | None, detail: dict[str, Any], what: str) -> None:
    """Audit a read of patient data before it is shown; when the entry cannot be written, the page shows an
    error instead of the data (no access without its audit entry) and the log names the failure."""
    import logging

    from dashboard.errors import STORE_ERRORS, log_swallowed

    try:
        store.record_view(action, patient_id, detail)
    except STORE_ERRORS as exc:
        log_swallowed(logging.getLogger(__name__), f"the audit entry for {what}", exc)
        st.error(
            f"This {what} could not be recorded in the audit trail, so it is not shown. Try again in a moment; if "
            "it keeps failing, tell an administrator (the server's log names the cause).",
            icon=":material/policy:",
        )
        st.stop()
