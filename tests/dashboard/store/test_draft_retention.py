"""An unsaved review (a patient's images and identifier) is not kept forever: drafts unused for the retention
period are deleted (audited), and a disabled account's draft goes with it."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from dashboard.accounts import Accounts
from dashboard.store import drafts
from dashboard.user_store import UserStore

PASSWORD = "correct horse battery staple"
STATE = {"patient": {"identifier": "PT-DRAFT-1"}}


def _draft(store, owner, image):
    store.save_draft(owner, STATE, [("ab" * 32, "mole.jpg", image)])


def test_drafts_unused_past_the_retention_are_deleted_and_audited(store, sample_images):
    _draft(store, "dr.old", sample_images[0])
    _draft(store, "dr.new", sample_images[1])
    with store._write.begin() as session:  # dr.old's review was left three weeks ago
        session.execute(
            sa.text("UPDATE review_draft SET updated_at = :t WHERE owner = 'dr.old'"),
            {"t": store.load_draft("dr.old").updated_at - timedelta(days=21)},
        )
    assert store.prune_drafts(timedelta(days=14)) == 1
    assert store.load_draft("dr.old") is None and store.load_draft("dr.new") is not None
    [event] = store.audit_events(action="draft.expire")
    assert event.detail == {"owners": ["dr.old"], "kept_days": 14}
    assert store.prune_drafts(timedelta(days=14)) == 0 and len(store.audit_events(action="draft.expire")) == 1


def test_a_disabled_accounts_draft_is_deleted_with_the_account_disabled(store, sample_images):
    accounts = Accounts(store)
    accounts.add("admin.one", PASSWORD, "admin", "", actor="test")
    clinician = accounts.add("dr.gone", PASSWORD, "clinician", "", actor="test")
    UserStore(store, clinician).save_draft(STATE, [("cd" * 32, "mole.jpg", sample_images[0])])
    accounts.set_active("dr.gone", False, actor="admin.one")
    assert store.load_draft("dr.gone") is None
    [event] = store.audit_events(action="user.disable")
    assert event.detail["draft_deleted"] is True


def test_opening_ones_draft_first_deletes_every_expired_one(store, sample_images, monkeypatch):
    accounts = Accounts(store)
    me = UserStore(store, accounts.add("dr.me", PASSWORD, "clinician", "", actor="test"))
    _draft(store, "dr.away", sample_images[0])
    me.save_draft(STATE, [("ef" * 32, "mole.jpg", sample_images[1])])
    with store._write.begin() as session:
        session.execute(
            sa.text("UPDATE review_draft SET updated_at = :t WHERE owner = 'dr.away'"),
            {"t": store.load_draft("dr.away").updated_at - timedelta(days=3)},
        )
    monkeypatch.setenv("TRIAGE_DRAFT_KEEP_DAYS", "2")
    assert me.load_draft() is not None
    assert store.load_draft("dr.away") is None


def test_the_retention_counts_from_a_drafts_last_change_not_its_first(store, sample_images):
    """A draft left alone past the retention goes, even when it is the only one; a draft saved again since is
    kept however long ago it was begun (pruning it would lose a review in progress)."""

    def backdate(owner, days):
        with store._write.begin() as session:
            session.execute(
                sa.text("UPDATE review_draft SET updated_at = :t WHERE owner = :o"),
                {"t": store.load_draft(owner).updated_at - timedelta(days=days), "o": owner},
            )

    _draft(store, "dr.left", sample_images[0])
    backdate("dr.left", 21)
    assert store.prune_drafts(timedelta(days=14)) == 1 and store.load_draft("dr.left") is None

    _draft(store, "dr.busy", sample_images[1])
    backdate("dr.busy", 21)
    store.save_draft("dr.busy", STATE | {"notes": "still at it"}, [("ab" * 32, "mole.jpg", sample_images[1])])
    assert store.prune_drafts(timedelta(days=14)) == 0
    assert store.load_draft("dr.busy").state["notes"] == "still at it"


def test_the_review_page_prunes_at_most_hourly_and_never_offers_an_expired_draft(store, sample_images, monkeypatch):
    """The review page loads the draft on every run: expired drafts are deleted at most once per
    DRAFT_PRUNE_EVERY_S, and one expired since the last prune is not offered meanwhile."""
    monkeypatch.setenv("TRIAGE_DRAFT_KEEP_DAYS", "14")
    me = UserStore(store, Accounts(store).add("dr.me", PASSWORD, "clinician", "", actor="test"))
    pruned: list[timedelta] = []
    prune = store.prune_drafts
    monkeypatch.setattr(store, "prune_drafts", lambda keep: pruned.append(keep) or prune(keep))
    me.save_draft(STATE, [("ab" * 32, "mole.jpg", sample_images[0])])
    assert me.load_draft(with_images=False).image_count == 1 and len(me.load_draft().images) == 1
    assert pruned == [timedelta(days=14)]  # two runs of the page, one prune

    with store._write.begin() as session:  # the review is left past the retention before the next prune
        session.execute(
            sa.text("UPDATE review_draft SET updated_at = :t WHERE owner = 'dr.me'"),
            {"t": store.load_draft("dr.me").updated_at - timedelta(days=15)},
        )
    assert me.load_draft(with_images=False) is None and me.load_draft() is None
    assert len(pruned) == 1 and store.load_draft("dr.me") is not None  # not offered, not yet deleted

    store._drafts_pruned_at -= drafts.DRAFT_PRUNE_EVERY_S  # an hour on
    assert me.load_draft() is None and len(pruned) == 2
    assert store.load_draft("dr.me") is None
    [event] = store.audit_events(action="draft.expire")
    assert event.detail["owners"] == ["dr.me"]
