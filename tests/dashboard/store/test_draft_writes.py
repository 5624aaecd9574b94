"""Keeping a draft on every change of a review (dashboard/store/drafts.py) reads and writes only what
changed: the images already kept are not read back, and new ones are stripped before the write lock."""

from __future__ import annotations

import sqlalchemy as sa

from dashboard.store import drafts


def _statements(store, run):
    sent: list[str] = []

    def record(_conn, _cursor, statement, *_rest):
        sent.append(" ".join(statement.split()))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)
    return sent


def test_a_state_change_does_not_read_back_the_kept_images(store, sample_images, monkeypatch):
    images = [("ab" * 32, "a.jpg", sample_images[0]), ("cd" * 32, "b.jpg", sample_images[1])]
    store.save_draft("dr.ada", {"notes": "first"}, images)
    stripped = []
    real = drafts.strip_metadata
    monkeypatch.setattr(drafts, "strip_metadata", lambda data: stripped.append(1) or real(data))
    sent = _statements(store, lambda: store.save_draft("dr.ada", {"notes": "second"}, images))
    assert not [s for s in sent if s.startswith("SELECT") and "review_draft_image.data" in s], sent
    assert stripped == []  # nothing new to strip
    added = [*images, ("ef" * 32, "c.jpg", sample_images[2])]
    store.save_draft("dr.ada", {"notes": "third"}, added)
    assert stripped == [1]
    kept = store.load_draft("dr.ada")
    assert kept.state == {"notes": "third"}
    assert [i.upload_sha256 for i in kept.images] == [sha for sha, _, _ in added]
    assert all(i.data for i in kept.images)


def test_the_offer_to_resume_reads_the_count_not_the_images(store, sample_images):
    """The review page offers a kept draft on every run: it reads the image count, not megabytes of photos."""
    images = [("ab" * 32, "a.jpg", sample_images[0]), ("cd" * 32, "b.jpg", sample_images[1])]
    store.save_draft("dr.ada", {"patient": {"identifier": "PT-1"}}, images)
    sent = _statements(store, lambda: store.load_draft("dr.ada", with_images=False))
    assert not [s for s in sent if "review_draft_image.data" in s], sent
    offer = store.load_draft("dr.ada", with_images=False)
    assert offer.image_count == 2 and offer.images == () and offer.state["patient"]["identifier"] == "PT-1"
    full = store.load_draft("dr.ada")
    assert full.image_count == 2 and [i.filename for i in full.images] == ["a.jpg", "b.jpg"]
    assert all(i.data for i in full.images)
