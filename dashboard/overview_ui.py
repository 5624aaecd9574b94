"""The review page's overview-photo panel: for a chosen lesion, add clinical photos that show where it is on
the body (dermoscopic image + overview photos per lesion per visit). They are saved with the lesion and
never scored; the logic is in dashboard/overview_photos.py and ReviewState."""

from __future__ import annotations

import streamlit as st

from dashboard.textsafe import literal
from dashboard.uploads import UPLOAD_FILE_MB


def review_panel(state, locked: bool) -> None:
    count = sum(len(state.overviews.of(sha)) for sha in state.images)
    with st.expander(f"Overview photos ({count})", icon=":material/accessibility_new:"):
        st.caption(
            "Clinical photos that show where a lesion is on the body, taken at this visit. They are saved with "
            "the lesion for the next visit's comparison and are **not scored** by the model."
        )
        shas = list(state.images)
        lesion = st.selectbox(
            "Lesion",
            shas,
            # The file name only: a choice's text must not change while the box shows it (a label or site
            # edited elsewhere on the page would make Streamlit drop the choice).
            format_func=lambda sha: state.images[sha].filename,
            key="overview_lesion",
        )
        if lesion is None:
            return
        files = st.file_uploader(
            "Add overview photos of this lesion",
            type=None,
            accept_multiple_files=True,
            key=f"overview_uploader_{state.uploader_generation}",
            max_upload_size=UPLOAD_FILE_MB,
            disabled=locked,
        )
        if files:
            for f in files:
                problem = state.add_overview(lesion, f.name, f.getvalue())
                if problem is not None:
                    state.problems.append(problem)
            state.uploader_generation += 1  # empty the uploaders: the photos live in the review
            st.rerun()
        photos = state.overviews.of(lesion)
        image = state.images[lesion]
        st.caption(f"{literal(image.label or image.filename)} · {image.site} · {len(photos)} overview photo(s)")
        if not photos:
            return
        for column, photo in zip(st.columns(4), photos, strict=False):
            with column:
                st.image(
                    photo.thumbnail_jpeg(),
                    caption=literal(photo.filename),
                    width="stretch",
                    alt=f"Overview photo {photo.filename}",
                )
                if not locked:
                    st.button(
                        "Remove",
                        key=f"overview_remove_{photo.sha256[:16]}",
                        on_click=state.remove_overview,
                        args=(lesion, photo.sha256),
                        type="tertiary",
                        icon=":material/delete:",
                    )
