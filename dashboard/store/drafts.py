"""Review drafts: one unsaved review per user, kept so that a page reload does not lose it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from dashboard.store import validation
from dashboard.store.core import StoreCore
from dashboard.store.files import is_sha256
from dashboard.store.models import AuditEvent, ReviewDraft, ReviewDraftImage, utcnow
from dashboard.store.privacy import strip_metadata
from dashboard.store.records import DraftImage, DraftRecord

# Drafts are kept for days (TRIAGE_DRAFT_KEEP_DAYS): deleting the expired ones at most hourly, not on every run of
# the review page, leaves one at most an hour longer, and load_draft never returns it meanwhile.
DRAFT_PRUNE_EVERY_S = 3600


class ReviewDrafts(StoreCore):
    _drafts_pruned_at: float | None = None  # time.monotonic() of this store's last prune_drafts_when_due

    def save_draft(self, owner: str, state: dict[str, Any], images: Sequence[tuple[str, str, bytes]]) -> None:
        """Keep ``owner``'s review in progress, in one transaction: ``state`` (JSON) and its images
        (upload hash, file name, bytes; stored with personal metadata stripped, written once each)."""
        if not isinstance(owner, str) or not owner.strip():
            raise ValueError("a draft needs its owner's username")
        owner = owner.strip()
        for sha, _, _ in images:
            if not is_sha256(sha):
                raise ValueError(f"draft image key must be a SHA-256, got {sha!r}")
        # New images are stripped before the write lock is taken (a re-encode of a large photo would hold up
        # every other save); an image kept already is neither stripped again nor read back.
        with self._read() as session:
            stored = set(
                session.scalars(
                    select(ReviewDraftImage.upload_sha256).join(ReviewDraft).where(ReviewDraft.owner == owner)
                )
            )
        stripped = {sha: strip_metadata(bytes(data)) for sha, _, data in images if sha not in stored}
        with self._write.begin() as session:
            draft = session.scalar(
                select(ReviewDraft)
                .where(ReviewDraft.owner == owner)
                .options(selectinload(ReviewDraft.images).defer(ReviewDraftImage.data))
            )
            if draft is None:
                draft = ReviewDraft(owner=owner, state={})
                session.add(draft)
            draft.state = dict(state)
            draft.updated_at = utcnow()
            kept = {image.upload_sha256: image for image in draft.images}
            wanted = [sha for sha, _, _ in images]
            for sha, image in kept.items():
                if sha not in wanted:
                    draft.images.remove(image)
            for position, (sha, filename, data) in enumerate(images):
                if sha in kept:
                    kept[sha].position = position
                    continue
                draft.images.append(
                    ReviewDraftImage(
                        upload_sha256=sha,
                        filename=validation.original_filename(filename),
                        position=position,
                        # (removed from the draft by another tab since the read above: stripped here)
                        data=stripped[sha] if sha in stripped else strip_metadata(bytes(data)),
                    )
                )

    def prune_drafts(self, keep: timedelta) -> int:
        """Delete the drafts not changed for ``keep`` (an abandoned review still holds a patient's images and
        identifier); returns how many. Audited with the owners' usernames (no patient data)."""
        cutoff = utcnow() - keep
        with self._read() as session:  # the usual answer, none: no write lock taken for it
            if session.scalar(select(ReviewDraft.id).where(ReviewDraft.updated_at < cutoff).limit(1)) is None:
                return 0
        with self._write.begin() as session:
            old = list(session.scalars(select(ReviewDraft).where(ReviewDraft.updated_at < cutoff)))
            for draft in old:
                session.delete(draft)
            if old:
                session.add(
                    AuditEvent(
                        actor="system",
                        action="draft.expire",
                        detail={"owners": sorted(d.owner for d in old), "kept_days": keep.days},
                    )
                )
        return len(old)

    def prune_drafts_when_due(self, keep: timedelta) -> int:
        """``prune_drafts``, at most once per DRAFT_PRUNE_EVERY_S for this store (the dashboard opens one per
        process); 0 when not due. Two page runs at once may both prune: harmless, the second finds none."""
        now = time.monotonic()
        if self._drafts_pruned_at is not None and now - self._drafts_pruned_at < DRAFT_PRUNE_EVERY_S:
            return 0
        deleted = self.prune_drafts(keep)
        self._drafts_pruned_at = now
        return deleted

    def load_draft(self, owner: str, *, with_images: bool = True, keep: timedelta | None = None) -> DraftRecord | None:
        """``owner``'s kept review; ``with_images=False``: without the image bytes (the offer to resume, on
        every run of the review page, needs only the count; a draft holds megabytes of photos). ``keep``: None
        for a draft not changed for that long, whether or not pruned yet."""
        stmt = select(ReviewDraft).where(ReviewDraft.owner == owner)
        if keep is not None:
            stmt = stmt.where(ReviewDraft.updated_at >= utcnow() - keep)  # prune_drafts' cutoff, the other side
        with self._read() as session:
            draft = session.scalar(stmt)
            if draft is None:
                return None
            if with_images:
                images = tuple(
                    DraftImage(i.upload_sha256, i.filename, bytes(i.data))
                    for i in session.scalars(
                        select(ReviewDraftImage)
                        .where(ReviewDraftImage.draft_id == draft.id)
                        .order_by(ReviewDraftImage.position)
                    )
                )
                count = len(images)
            else:
                images = ()
                count = session.scalar(
                    select(func.count(ReviewDraftImage.id)).where(ReviewDraftImage.draft_id == draft.id)
                )
            return DraftRecord(
                owner=draft.owner,
                state=dict(draft.state or {}),
                updated_at=draft.updated_at,
                images=images,
                image_count=int(count or 0),
            )

    def delete_draft(self, owner: str) -> bool:
        with self._write.begin() as session:
            draft = session.scalar(select(ReviewDraft).where(ReviewDraft.owner == owner))
            if draft is None:
                return False
            session.delete(draft)
            return True
