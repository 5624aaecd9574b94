"""Every page through streamlit.testing.v1.AppTest, on real images and the small fresh checkpoint.

Uploads: Streamlit 1.67's AppTest drives ``st.file_uploader`` itself (``FileUploader.set_value`` with
(name, bytes, mime) tuples registers the bytes with the uploaded-file manager), so these tests upload
real ISIC images through the real widget; no back door into session_state is needed. What the page
built is then checked through the review model at ``at.session_state["review"]`` and in the database.

Every test signs in first, through the sign-in form (``sign_in``), as an account made the way an
administrator makes one (``AppEnv.add_user``); there is no test-only way past the login.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PASSWORD = "correct horse battery staple"  # as tests/dashboard/conftest.py

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
PATIENT = "PT-APPTEST-001"
CLINICIAN = "dr.test"

pytestmark = pytest.mark.timeout(300)


# ---------------------------------------------------------------- driving the app


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def sign_in(at: AppTest, username: str, password: str = PASSWORD) -> AppTest:
    """Sign in through the sign-in page's form, as a person would."""
    assert at.title[0].value == "Sign in", [t.value for t in at.title]
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    widget(at.button, "Sign in").click()
    at.run()
    assert not at.exception, at.exception
    return at


def start(user: str | None = CLINICIAN, role: str = "clinician") -> AppTest:
    """The app, signed in as ``user`` (created with ``role`` if it does not exist yet); None: anonymous."""
    if user is not None:
        _ensure_user(user, role)
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    if user is not None:
        sign_in(at, user)
        assert any("Signed in as" in m.value for m in at.sidebar.markdown), "sign-in failed"
    return at


def _ensure_user(username: str, role: str) -> None:
    from dashboard.accounts import Accounts
    from dashboard.store import CaseStore

    with CaseStore.from_url() as store:  # $DATABASE_URL / $TRIAGE_DATA_DIR of the app_env fixture
        accounts = Accounts(store)
        if username not in {u.username for u in accounts.list()}:
            accounts.add(username, PASSWORD, role, "Dr Test" if username == CLINICIAN else "", actor="test-setup")


def shown(markdown: str) -> str:
    """Markdown source as the reader sees the text: user text arrives backslash-escaped (textsafe.literal)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", str(markdown).replace("\u2060", ""))


def texts(at: AppTest) -> str:
    """All visible text of the last run (markdown, captions, alerts, headings), for assertions."""
    parts = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title", "header", "subheader"):
        parts.extend(shown(e.value) for e in getattr(at, kind))
    return "\n".join(parts)


def widget(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def open_new_patient(at: AppTest, identifier: str = PATIENT, birth_year: int | None = 1961, sex: str = "female"):
    widget(at.text_input, "Patient identifier (pseudonymous)").input(identifier)
    if birth_year is not None:
        widget(at.number_input, "Birth year").set_value(birth_year)
    widget(at.selectbox, "Sex").set_value(sex)
    widget(at.button, "Start review").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["review"].patient.identifier == identifier


def upload(at: AppTest, files: list[tuple[str, bytes, str]]) -> None:
    at.file_uploader[0].set_value(files)
    at.run()
    assert not at.exception, at.exception


def run_triage(at: AppTest) -> None:
    at.button(key="run_triage").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["review"].result is not None


def review_to_results(at: AppTest, lesions) -> None:
    open_new_patient(at)
    upload(at, [f.upload() for f in lesions])
    state = at.session_state["review"]
    by_name = {img.filename: img for img in state.images.values()}
    for f in lesions:  # set each lesion's real site through its selectbox
        if f.site != "unknown":
            at.selectbox(key=f"site_{by_name[f.name].key}").set_value(f.site)
            at.run()
    run_triage(at)


# ---------------------------------------------------------------- patient review


def test_review_upload_triage_decide_save(app_env, patient_lesions):
    at = start()
    assert at.title[0].value == "Patient review"
    open_new_patient(at)

    real = patient_lesions
    corrupt = ("corrupt_lesion.jpg", real[0].data[:3000], "image/jpeg")
    empty = ("empty.png", b"", "image/png")
    not_image = ("referral-letter.txt", b"Dear colleague, ...", "text/plain")
    again = ("same-as-first.jpg", real[0].data, "image/jpeg")
    upload(at, [f.upload() for f in real] + [corrupt, empty, not_image, again])

    state = at.session_state["review"]
    assert len(state.images) == 5
    errors = [shown(e.value) for e in at.error]
    assert any("corrupt_lesion.jpg" in e and "truncated" in e for e in errors)
    assert any("empty.png" in e and "0 bytes" in e for e in errors)
    assert any("referral-letter.txt" in e and "not an image" in e for e in errors)
    assert any("same-as-first.jpg" in shown(w.value) and real[0].name in shown(w.value) for w in at.warning)

    by_name = {img.filename: img for img in state.images.values()}
    for f in real:
        at.selectbox(key=f"site_{by_name[f.name].key}").set_value(f.site)
        at.run()
    assert [img.site for img in state.images.values()] == [f.site for f in real]

    run_triage(at)
    table = state.scored_table()
    threshold = state.result.threshold
    # Ranked: rank 1..5, ordered by the triage score, and the page shows the cards in that order.
    assert list(table["rank"]) == [1, 2, 3, 4, 5]
    assert list(table["triage_score"]) == sorted(table["triage_score"], reverse=True)
    assert all(im.alt for element in at.image for im in element.proto.imgs)  # upload thumbnails, cards: alt text
    headings = [shown(m.value) for m in at.markdown if m.value.startswith("#### Rank ")]
    assert headings == [f"#### Rank {r.rank} · {r.label}" for r in table.itertuples()]
    # Flags: "above threshold" exactly where P(melanoma) ≥ the operating threshold; no outlier invented.
    assert list(table["suspicious"]) == [p >= threshold for p in table["p_melanoma"]]
    above = widget(at.metric, "Above threshold")
    assert int(above.value) == int((table["p_melanoma"] >= threshold).sum())
    assert not table["ugly_duckling"].isna().any()  # 5 lesions: the comparison is made
    assert int(widget(at.metric, "Lesions scored").value) == 5
    # Uncertainty, the disclaimer and the validation line are on the page with the scores.
    page = texts(at)
    assert "Decision support, not a diagnosis" in page
    assert "across orientations)" in page  # each score's uncertainty interval, in words
    assert "Operating threshold" in page

    # Saliency overlay of the top lesion: the registry's default method, then another one chosen on the card.
    top = state.images[table.iloc[0]["image_id"]]
    n_images = len(at.image)
    at.toggle(key=f"cam_{top.key}").set_value(True)
    at.run()
    assert not at.exception, at.exception
    from model.cam_methods import DEFAULT_METHOD

    assert (top.sha256, DEFAULT_METHOD) in state.heatmaps  # the gallery toggle shows the registry's default
    assert not any("Saliency map unavailable" in shown(e.value) for e in at.error)
    assert len(at.image) == n_images + 1  # the overlay replaces the thumbnail; its colour scale joins it
    at.selectbox(key=f"cam_method_{top.key}").set_value("layercam").run()
    assert not at.exception, at.exception
    assert (top.sha256, "layercam") in state.heatmaps

    # Decisions, then save.
    at.pills(key=f"decision_{top.key}").set_value("biopsy")
    at.run()
    at.text_area(key=f"comment_{top.key}").input("asymmetric, regression structures")
    second = state.images[table.iloc[1]["image_id"]]
    at.pills(key=f"decision_{second.key}").set_value("monitor")
    at.run()
    assert at.segmented_control(key=f"review_months_{second.key}").value == 3  # the interval appears, 3 months
    at.segmented_control(key=f"review_months_{second.key}").set_value(6).run()
    assert "not saved" in texts(at)  # the sidebar says so on every page
    at.button(key="save_visit").click()
    at.run()
    assert not at.exception, at.exception
    assert state.saved_visit_id is not None
    assert any("Saved as visit" in shown(s.value) for s in at.success)
    # The upload's error cards (corrupt, empty, not an image) were about the work in progress: gone once saved.
    assert not at.main.error, [shown(e.value) for e in at.main.error]

    store = app_env.store()
    (summary,) = store.search_patients(PATIENT)
    assert (summary.birth_year, summary.sex, summary.visit_count) == (1961, "female", 1)
    visit = store.load_visit(state.saved_visit_id)
    assert visit.clinician == CLINICIAN and visit.model_version == "fresh-imagenet-lite0-128"
    assert [les.prediction.rank for les in visit.lesions] == [1, 2, 3, 4, 5]
    assert visit.lesions[0].image.sha256 == top.sha256
    assert visit.lesions[0].decision.action == "biopsy"
    assert visit.lesions[0].decision.comment == "asymmetric, regression structures"
    assert (visit.lesions[1].decision.action, visit.lesions[1].decision.review_in_months) == ("monitor", 6)
    assert all(les.decision is None for les in visit.lesions[2:])
    assert {les.site for les in visit.lesions} == {f.site for f in real}
    assert store.load_draft(CLINICIAN) is None  # the draft kept during the review goes once it is saved
    store.close()


def test_unsaved_work_survives_page_switches_and_is_not_dropped_silently(app_env, patient_lesions):
    at = start()
    review_to_results(at, patient_lesions[:3])
    before = [shown(m.value) for m in at.markdown if m.value.startswith("#### Rank ")]
    assert len(before) == 3

    at.switch_page("views/model_card.py").run()
    assert not at.exception, at.exception
    assert "not saved" in texts(at)
    at.switch_page("views/review.py").run()
    assert [shown(m.value) for m in at.markdown if m.value.startswith("#### Rank ")] == before

    # Starting a new patient asks first; "keep working" keeps everything.
    at.button(key="new_patient").click().run()
    assert not at.exception, at.exception
    assert "discards this unsaved work" in texts(at)
    at.button(key="cancel_discard").click().run()
    assert at.session_state["review"].patient.identifier == PATIENT
    assert len(at.session_state["review"].images) == 3
    at.button(key="new_patient").click().run()
    at.button(key="confirm_discard").click().run()
    assert at.session_state["review"].patient is None


def test_zip_upload_and_changed_sites_need_a_new_triage(app_env, other_lesions):
    at = start()
    open_new_patient(at, "PT-ZIP")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for f in other_lesions:
            archive.writestr(f"clinic-export/{f.name}", f.data)
        archive.writestr("clinic-export/readme.txt", "exported by the dermatoscope")
    huge = _png_header_only(30_000, 20_000)  # 600 megapixels claimed in the header
    upload(at, [("visit.zip", buffer.getvalue(), "application/zip"), ("panorama.png", huge, "image/png")])
    state = at.session_state["review"]
    assert len(state.images) == 3
    # A document beside the images is skipped with a notice, not a red error card (issue 12, item 7).
    assert not any("readme.txt" in shown(e.value) for e in at.error)
    notices = [shown(i.value) for i in at.info]
    assert any("visit.zip/clinic-export/readme.txt" in n and "not an image" in n for n in notices), notices
    assert any("panorama.png" in shown(e.value) and "too large (600 megapixels)" in shown(e.value) for e in at.error)

    run_triage(at)
    image = next(iter(state.images.values()))
    at.selectbox(key=f"site_{image.key}").set_value("palms/soles")
    at.run()
    # The expander is collapsed after triage but its widgets still exist; the change makes the result stale.
    assert state.result_is_stale
    assert any("run it again" in w.value.lower() for w in at.warning)
    assert at.button(key="save_visit").disabled


def test_no_model_installed_page(monkeypatch, app_env, tmp_path):
    monkeypatch.setenv("TRIAGE_CHECKPOINT", str(tmp_path / "no-such-checkpoint"))
    at = start()
    assert at.title[0].value == "No model installed"
    assert "no-such-checkpoint" in texts(at)
    at.switch_page("views/model_card.py").run()
    assert not at.exception, at.exception
    assert "No model installed" in texts(at)
    assert "CC BY-NC 4.0" in texts(at)


def test_database_that_cannot_be_opened_gives_a_clear_page(monkeypatch, app_env):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://triage:s3cret-pw@127.0.0.1:9/triage")
    at = start(user=None)
    assert not at.exception, at.exception
    # Accounts live in the case database: without it nobody can sign in, and the page says why.
    assert at.title[0].value == "The case database is unavailable"
    assert "s3cret-pw" not in texts(at)
    assert not at.text_input  # no sign-in form, no patient data
    # Before sign-in anyone who reaches the server sees this page: no address, account or folder on it.
    assert "127.0.0.1" not in texts(at) and str(app_env.data_dir) not in texts(at)
    assert "The server's log names the cause" in texts(at)


def test_database_error_details_are_shown_to_a_signed_in_administrator_only(monkeypatch, app_env):
    broken = "postgresql+psycopg://triage:s3cret-pw@127.0.0.1:9/triage"
    for user, role, details in (("clin.details", "clinician", False), ("admin.details", "admin", True)):
        monkeypatch.setenv("DATABASE_URL", app_env.database_url)
        at = start(user, role)
        monkeypatch.setenv("DATABASE_URL", broken)  # the database goes away during the session
        at.run()
        assert at.title[0].value == "The case database is unavailable"
        assert ("127.0.0.1:9/triage" in texts(at)) is details, role
        assert "s3cret-pw" not in texts(at)


# ---------------------------------------------------------------- saliency


def test_saliency_page(app_env, patient_lesions):
    at = start()
    at.switch_page("views/saliency.py").run()
    assert "No lesions have been scored yet" in texts(at)

    at.switch_page("views/review.py").run()
    review_to_results(at, patient_lesions[:3])
    at.switch_page("views/saliency.py").run()
    assert not at.exception, at.exception
    methods = at.multiselect(key="saliency_methods").value
    assert len(methods) >= 2
    assert len(at.image) == 2 + len(methods)  # the colour scale, the original and one overlay per method
    captions = [im.caption for element in at.image for im in element.proto.imgs]
    assert any("from low (the image is left as it is) to high" in c for c in captions)  # the colour scale
    assert all(im.alt for element in at.image for im in element.proto.imgs)  # each image says what it shows
    assert [b.label for b in at.get("download_button")] == ["Download PNG"] * len(methods)
    assert not any("unavailable" in shown(e.value) for e in at.error)
    assert any(link.value == "Back to the review in progress" for link in at.page_link)
    at.slider(key="saliency_opacity").set_value(0.8).run()
    assert not at.exception, at.exception
    at.radio(key="saliency_style").set_value("contours").run()
    assert not at.exception, at.exception


# ---------------------------------------------------------------- case history


def test_history_finds_the_saved_patient(app_env, patient_lesions):
    at = start()
    review_to_results(at, patient_lesions[:3])
    state = at.session_state["review"]
    top = state.images[state.scored_table().iloc[0]["image_id"]]
    at.pills(key=f"decision_{top.key}").set_value("excise").run()
    at.button(key="save_visit").click().run()
    assert state.is_saved

    at.switch_page("views/history.py").run()
    assert not at.exception, at.exception
    at.text_input(key="history_search").input("apptest").run()  # part of the identifier, any case
    assert not at.exception, at.exception
    page = texts(at)
    assert f"Case history: {PATIENT}" in page
    assert "Decision:** Excise" in page
    assert int(widget(at.metric, "Visits").value) == 1
    assert int(widget(at.metric, "Lesions followed").value) == 3
    assert len(at.get("plotly_chart")) >= 1  # the lesion score trend
    assert len(at.dataframe) >= 2  # visits + decisions

    store = app_env.store()
    (summary,) = store.search_patients(PATIENT)
    assert [e.action for e in store.audit_events(summary.id)].count("patient.view") == 1
    csv = store.export_patient_history(summary.id, "csv")
    assert csv.count("\n") >= 4 and "excise" in csv
    assert json.loads(store.export_patient_history(summary.id, "json"))
    store.close()

    at.text_input(key="history_search").input("nobody-like-this").run()
    assert "No patient identifier contains" in texts(at)


def test_saliency_of_a_lesion_from_a_saved_visit(app_env, patient_lesions):
    from urllib.parse import parse_qsl

    at = start()
    review_to_results(at, patient_lesions[:3])
    state = at.session_state["review"]
    at.button(key="save_visit").click().run()
    assert state.is_saved
    visit_id = state.saved_visit_id

    at.switch_page("views/history.py").run()
    at.text_input(key="history_search").input(PATIENT).run()
    assert not at.exception, at.exception
    links = [link for link in at.page_link if link.value == "Inspect saliency"]
    assert len(links) == 3  # one per lesion card of the opened visit
    store = app_env.store()
    visit = store.load_visit(visit_id)
    store.close()
    top, second = visit.lesions[0], visit.lesions[1]
    target = dict(parse_qsl(links[0].proto.query_string))
    assert target == {"visit": str(visit_id), "lesion": top.image.sha256[:16]}

    # Follow the link (AppTest cannot click a page_link: it switches pages with the link's query string).
    at.query_params.update(target)
    at.switch_page("views/saliency.py").run()
    assert not at.exception, at.exception
    page = texts(at)
    assert "Image from a saved visit" in page
    assert f"Saved visit {visit.number} · {visit.visit_time.astimezone():%Y-%m-%d %H:%M}" in page
    assert f"lesion #{top.lesion_number} “{top.label}”" in page
    model_line = next(shown(w.value) for w in [*at.warning, *at.info] if "current model" in w.value)
    assert "may differ" not in model_line  # one statement: the same model, or which other model scored it
    assert "`fresh-imagenet-lite0-128`" in model_line  # the model loaded now, named
    assert f"`{top.prediction.model_id}`" in model_line  # and the model that scored it then
    assert f"**Lesion #{top.lesion_number} {top.label}** · {top.site}" in page
    methods = at.multiselect(key="saliency_methods").value
    assert len(methods) >= 2
    assert len(at.image) == 2 + len(methods)  # the colour scale, the original + one overlay per method
    assert [b.label for b in at.get("download_button")] == ["Download PNG"] * len(methods)
    assert not at.error, [shown(e.value) for e in at.error]
    assert any(link.value == "Back to case history" for link in at.page_link)
    at.slider(key="saliency_opacity").set_value(0.8).run()
    assert not at.exception, at.exception
    assert len(at.image) == 2 + len(methods)

    # A stored file that has gone missing: a clear error, not a stack trace.
    store = app_env.store()
    store.image_path(second.image.sha256).unlink()
    store.close()
    at.query_params["lesion"] = second.image.sha256[:16]
    at.run()
    assert not at.exception, at.exception
    assert any("cannot be read: file not found" in shown(e.value) and second.label in shown(e.value) for e in at.error)
    assert len(at.image) == 0

    # The review in progress keeps its own saliency page.
    at.query_params.clear()
    at.switch_page("views/saliency.py").run()
    assert not at.exception, at.exception
    assert "Image from a saved visit" not in texts(at)
    assert at.selectbox(key="saliency_lesion").value in state.images


# ---------------------------------------------------------------- model card


def test_model_page_without_validation_files(app_env):
    at = start()
    at.switch_page("views/model_card.py").run()
    assert not at.exception, at.exception
    page = texts(at)
    assert "not available for this checkpoint" in page
    assert "no validated sensitivity/specificity" in page
    for needle in ("CC BY-NC 4.0", "doi:10.1038/sdata.2018.161", "doi:10.1038/s41597-021-00815-z", "Codella"):
        assert needle in page, needle
    assert "Limitations" in page


def test_model_page_with_validation_figures(monkeypatch, app_env, tmp_path):
    folder = tmp_path / "checkpoint"
    shutil.copytree(app_env.checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config["operating_point"] = {
        "threshold": 0.31,
        "chosen_by": "sensitivity ≥ 0.9 on validation",
        "sensitivity": 0.9,
        "specificity": 0.75,
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "validation.json").write_text(
        json.dumps(
            {
                "roc": {"fpr": [0, 0.1, 0.25, 1], "tpr": [0, 0.7, 0.9, 1]},
                "pr": {"recall": [0, 0.7, 0.9, 1], "precision": [1, 0.8, 0.7, 0.5]},
                "calibration": {
                    "mean_predicted": [0.1, 0.4, 0.8],
                    "fraction_positive": [0.08, 0.45, 0.7],
                    "count": [40, 30, 30],
                },
                "per_dataset": {"isic2020": {"auc": 0.88, "auc_ci": [0.84, 0.92]}},
            }
        )
    )
    (folder / "MODEL_CARD.md").write_text("# Model card\n\nTrained on ISIC data.")
    monkeypatch.setenv("TRIAGE_CHECKPOINT", str(folder))
    at = start()
    at.switch_page("views/model_card.py").run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 3
    assert widget(at.metric, "Sensitivity").value == "90.0%"
    # PPV at 1.76% prevalence, from sensitivity and specificity: 0.9·π / (0.9·π + 0.25·(1−π)) ≈ 6.1%.
    assert widget(at.metric, "PPV at 1.76%").value == "6.1%"
    assert int(widget(at.metric, "Reviews / melanoma").value) == 16
    assert "Out of 1,000 lesions" in texts(at)


def test_follow_up_visit_links_lesions_and_builds_a_trend(app_env, patient_lesions):
    # Visit 1: three lesions, saved.
    at = start()
    review_to_results(at, patient_lesions[:3])
    at.button(key="save_visit").click().run()
    first = at.session_state["review"]
    assert first.is_saved
    old_images = {img.filename: img for img in first.images.values()}

    # Visit 2: the same patient, opened from the database.
    at.button(key="next_patient").click().run()
    at.text_input(key="patient_search").input(PATIENT[:6]).run()
    at.button(key="open_patient").click().run()
    assert not at.exception, at.exception
    state = at.session_state["review"]
    assert state.patient.patient_id is not None and len(state.patient.known_lesions) == 3
    assert "1 earlier visit, 3 known lesions" in texts(at)

    # A re-uploaded image from visit 1 is recognised and linked to its lesion; a new photo is linked by hand.
    repeat, new_photo = patient_lesions[0], patient_lesions[3]
    upload(at, [repeat.upload(), new_photo.upload()])
    assert any("already saved at the visit of" in shown(i.value) for i in at.info)
    by_name = {img.filename: img for img in state.images.values()}
    assert by_name[repeat.name].existing_lesion_id is not None
    target = next(les for les in state.patient.known_lesions if les.label == old_images[patient_lesions[1].name].label)
    at.selectbox(key=f"link_{by_name[new_photo.name].key}_0").set_value(target.id).run()
    assert not at.exception, at.exception
    assert by_name[new_photo.name].existing_lesion_id == target.id
    assert by_name[new_photo.name].site == target.site  # a linked lesion keeps its recorded site
    run_triage(at)
    assert any("Follow-up of lesion" in shown(m.value) for m in at.markdown)
    at.button(key="save_visit").click().run()
    assert state.is_saved

    store = app_env.store()
    assert len(store.list_lesions(state.patient.patient_id)) == 3  # no new lesions: both were follow-ups
    trend = store.lesion_score_trend(target.id)
    assert len(trend) == 2 and trend[0].visit_time <= trend[1].visit_time
    store.close()

    # "Open in case history" links with the patient's database id (never the identifier) in the URL.
    assert any(link.label == "Open in case history" for link in at.get("page_link"))
    at.query_params["patient_id"] = str(state.patient.patient_id)
    at.switch_page("views/history.py").run()
    assert at.text_input(key="history_search").value == PATIENT
    assert int(widget(at.metric, "Visits").value) == 2
    labels = [b.label for b in at.get("download_button")]
    assert labels[0] == "Download visit report (PDF)"  # the opened visit's report, then the history's exports
    assert {"Download CSV", "Download JSON"} <= set(labels)


def test_model_page_reads_curves_per_dataset(monkeypatch, app_env, tmp_path):
    """validation.json as training/make_default.py writes it: curves per dataset plus pooled figures."""
    folder = tmp_path / "checkpoint"
    shutil.copytree(app_env.checkpoint, folder)
    curves = {
        "roc": {"fpr": [0, 0.3, 1], "tpr": [0, 0.9, 1]},
        "pr": {"recall": [0, 0.9, 1], "precision": [1, 0.3, 0.15], "prevalence": 0.15},
        "calibration": {"mean_predicted": [0.2, 0.8], "fraction_positive": [0.1, 0.7], "count": [90, 10]},
    }
    (folder / "validation.json").write_text(
        json.dumps(
            {
                "curves": {"pooled": curves, "ham10000": curves, "isic2020": curves},
                "pooled": {"n": 12916, "n_melanoma": 1900, "auc": 0.886, "auc_ci": [0.876, 0.894]},
                "per_dataset": {"ham10000": {"n": 10015, "auc": 0.891}, "isic2020": {"n": 751, "auc": 0.823}},
            }
        )
    )
    monkeypatch.setenv("TRIAGE_CHECKPOINT", str(folder))
    at = start()
    at.switch_page("views/model_card.py").run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 3
    assert "ROC AUC **0.886** (95% CI 0.876–0.894)" in texts(at)
    table = next(d.value for d in at.dataframe if "dataset" in d.value.columns)
    assert list(table["dataset"]) == ["all datasets (pooled)", "ham10000", "isic2020"]
    at.segmented_control(key="curve_set").set_value("isic2020").run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 3


def test_the_committed_default_model_card_renders(monkeypatch, app_env):
    from data.settings import SCORE_RISE
    from model.checkpoint import DEFAULT_CHECKPOINT

    if not (DEFAULT_CHECKPOINT / "config.json").is_file():
        pytest.skip(f"no default model committed at {DEFAULT_CHECKPOINT}")
    monkeypatch.delenv("TRIAGE_CHECKPOINT")
    at = start()
    at.switch_page("views/model_card.py").run()
    assert not at.exception, at.exception
    assert "not available for this checkpoint" not in texts(at)
    # the whole-patient ranking figure, then ROC, precision-recall and calibration
    assert [c.key for c in at.get("plotly_chart")] == [
        "whole_patient",
        "val_ROC",
        "val_Precision–recall",
        "val_Calibration",
    ]
    assert "complete patients" in texts(at)
    assert "Run to run: the same training recipe with another seed gave share reviewed" in texts(at)
    assert "P(melanoma) ≥ **1.6%** are flagged" in texts(at)  # a percentage, as on every other page
    # what the network is, and the ± and the follow-up rise margin with the served model's own out-of-fold checks
    network = json.loads((DEFAULT_CHECKPOINT / "config.json").read_text())["network"]
    tails = f"{network['members']} trained tails** sharing the frozen trunk up to `{network['shared_trunk']}`"
    assert tails in texts(at)
    stability = json.loads((DEFAULT_CHECKPOINT / "validation.json").read_text())["score_stability"]
    spread_auc = stability["uncertainty"]["tta_spread_error_auc_equal_score"]
    assert f"the scores on the wrong side of the threshold (error AUC {spread_auc:.2f}; chance 0.50)" in texts(at)
    rise = stability["rephotograph"]["benign"]["flagged_share"][str(float(SCORE_RISE.value))]
    assert f"the second already shows such a rise over the first in {rise:.1%} of pairs" in texts(at)
    # the per-1,000 figures also at the complete patients' own sensitivity (52%, 13 of 25), not only pooled
    validation = json.loads((DEFAULT_CHECKPOINT / "validation.json").read_text())
    complete = validation["per_dataset"]["isic2020_patients"]
    assert f"sensitivity {complete['sensitivity']:.0%} on {complete['n_melanoma']} melanomas" in texts(at)
    # calibration is drawn at screening prevalence (cross-fitted), the claim the Limitations section makes
    [calibration] = [c for c in at.get("plotly_chart") if c.key == "val_Calibration"]
    assert "Calibration at screening prevalence" in calibration.proto.spec
    ece = validation["calibration_at_screening_prevalence"]["cross_fitted"]["ece"]
    assert f"(calibration error {ece:.4f})" in texts(at)
    # the ROC's × lies on the pooled (unweighted) curve; the weighted figures above say they are weighted
    op = json.loads((DEFAULT_CHECKPOINT / "config.json").read_text())["operating_point"]
    [roc] = [c for c in at.get("plotly_chart") if c.key == "val_ROC"]
    marker = next(t for t in json.loads(roc.proto.spec)["data"] if t.get("name") == "operating point")
    assert marker["y"] == [pytest.approx(op["unweighted_sensitivity"])]
    assert marker["x"] == [pytest.approx(1 - op["unweighted_specificity"])]
    assert f"every image counted once (sensitivity {op['unweighted_sensitivity']:.1%})" in texts(at)
    mel = {k: v["n_melanoma"] for k, v in validation["per_dataset"].items()}
    assert f"{mel['ham10000'] / sum(mel.values()):.0%} of its melanomas are ham10000's" in texts(at)


def test_first_triage_of_ten_images_shows_a_progress_bar(app_env, datasets_dir, monkeypatch):
    """The page drives an st.progress bar through the triage engine's progress callback (the bar is
    cleared once the ranked gallery appears, so the callback's calls are what we can observe)."""
    from dashboard.review_state import ReviewState

    calls: list[tuple[int, int]] = []
    original = ReviewState.run_triage

    def spy(self, predictor, tta=None, progress=None, triage_fn=None, **kwargs):
        assert progress is not None, "the review page must pass a progress callback"

        def recording(done: int, total: int) -> None:
            calls.append((done, total))
            progress(done, total)  # the page's callback: updates the st.progress bar

        return original(self, predictor, tta=tta, progress=recording, triage_fn=triage_fn, **kwargs)

    monkeypatch.setattr(ReviewState, "run_triage", spy)
    ham = sorted((datasets_dir / "ham10000" / "images").glob("*.jpg"))[:10]
    at = start()
    open_new_patient(at, identifier="PROGRESS-10")
    upload(at, [(p.name, p.read_bytes(), "image/jpeg") for p in ham])
    assert len(at.session_state["review"].images) == 10
    run_triage(at)
    assert calls, "no progress was reported while scoring"
    assert calls[-1] == (10, 10)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_model_page_compares_this_clinics_histology_results_with_the_card(monkeypatch, app_env):
    """The "In this clinic" section: the outcomes recorded in the store, scored by the loaded model, against
    the threshold; another model version's scores are left out; reading them is audited once a session."""
    from datetime import date

    from dashboard.store.records import OutcomeRow
    from dashboard.user_store import UserStore
    from model.checkpoint import model_id, weights_digest

    config = json.loads((app_env.checkpoint / "config.json").read_text())
    threshold = config["operating_point"]["threshold"] if config.get("operating_point") else None

    def outcome(lesion: int, histology: str, p: float, rank: int, model: str) -> OutcomeRow:
        return OutcomeRow(
            patient_id=1, lesion_id=lesion, lesion_number=lesion, site="torso", body_region=None, visit_id=1,
            visit_number=1, image_date=date(2026, 5, 1), age_at_visit=60, sex="female", image_sha256="0" * 64,
            model_id=model, model_checksum=weights_digest(config) or "unknown", p_melanoma=p, p_spread=0.01,
            tta_views=2,
            ugly_duckling=None, outlier=None, rank=rank, histology=histology, reported_on=date(2026, 5, 20),
            latest_image=True, ranked_in_visit=12,
        )  # fmt: skip

    rows = [
        outcome(1, "melanoma", 0.99, 2, model_id(config)),
        outcome(2, "benign", 0.0001, 9, model_id(config)),
        outcome(3, "melanoma", 0.99, 1, "an-older-model"),
    ]
    monkeypatch.setattr(UserStore, "outcomes", lambda self, *a, **k: (self._read(), rows)[1])
    at = start()
    at.switch_page("views/model_card.py").run()
    assert not at.exception, at.exception
    page = texts(at)
    assert "In this clinic" in page
    assert "2 lesions with a histology result scored by this model, 1 of them melanoma, in 1 visit that" in page
    assert "1 result of lesions scored by another model version is left out" in page
    assert "too few to judge" in page
    [table] = [t.value for t in at.table if "this clinic" in t.value.columns]
    clinic, random = table["this clinic"], table["random order"]
    assert clinic["melanoma in the visit's top 5"].startswith("100% (1 of 1;")
    share = "share of the visit's other lesions listed before the melanoma"
    assert (clinic[share], random[share]) == ("0.09 (1 visit)", "0.50")  # rank 2 of 12: 1 of the 11 others first
    if threshold is not None:
        assert clinic["melanomas flagged at the threshold"].startswith("100% (1 of 1;")
    at.run()  # a rerun (any widget) reads again but does not audit again
    store = app_env.store()
    [event] = store.audit_events(action="outcomes.summary")
    assert (event.actor, event.patient_id, event.detail["rows"]) == (CLINICIAN, None, 3)
    store.close()


def test_the_copy_note_shows_file_names_as_typed_not_as_markdown(app_env, patient_lesions):
    """The same photo uploaded as a JPEG and as a PNG: the review's note names both files, escaped (a name
    such as *back*.png rendered bold, a [link](…) as a link)."""
    import io as _io

    from PIL import Image

    png = _io.BytesIO()
    Image.open(_io.BytesIO(patient_lesions[0].data)).save(png, "PNG")
    at = start()
    open_new_patient(at)
    upload(at, [*(f.upload() for f in patient_lesions[:3]), ("*back*.png", png.getvalue(), "image/png")])
    run_triage(at)
    [note] = [c.value for c in at.caption if "same photo" in c.value]
    assert "“\\*back\\*\\.png”" in note  # escaped: shown as typed, not in bold
    assert "ISIC\\_" in note and "look like the same photo uploaded 2 times" in note
