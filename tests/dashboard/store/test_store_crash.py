"""Killed writers and concurrent writers leave a consistent, complete store.

The writers are separate processes (store_writer.py) so that SIGKILL hits a
real process holding a real transaction, and two writers really race.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dashboard.store import CaseStore, check_integrity
from dashboard.store.models import AuditEvent, Decision, Lesion, LesionImage, Patient, Prediction, Visit

LESIONS_PER_REVIEW = 3  # as in store_writer.py
WRITER_PATIENT = "PSEUDO-CRASH"


class Writer:
    """A store_writer.py process whose stdout lines are collected by a thread."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        # stderr goes to a file: only the reader thread may touch the stdout pipe.
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the writer
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.strip())
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"writer never got there; output {self.lines}; stderr {self.stderr}")
                self._cond.wait(min(left, 0.2))

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._reader.join(timeout=30)

    def finish(self, timeout: float = 120) -> None:
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=30)
        assert self.proc.returncode == 0, self.stderr

    @property
    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-4000:]

    @property
    def committed(self) -> list[int]:
        return [int(line.split()[1]) for line in self.lines if line.startswith("committed ")]


def _assert_consistent(store: CaseStore) -> set[int]:
    """Every visit in the database is complete; returns the visit ids."""
    with store.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        visits = set(conn.scalars(select(Visit.id)))
        for model in (LesionImage, Decision):
            per_visit = dict(conn.execute(select(model.visit_id, func.count()).group_by(model.visit_id)).all())
            assert per_visit == dict.fromkeys(visits, LESIONS_PER_REVIEW), model.__tablename__
        predictions = conn.scalar(select(func.count()).select_from(Prediction))
        assert predictions == LESIONS_PER_REVIEW * len(visits)
        # Lesions exist only with an image (no lesion left behind by a rolled-back visit).
        orphan_lesions = conn.scalar(select(func.count()).select_from(Lesion).where(~Lesion.images.any()))
        assert orphan_lesions == 0
        saves = conn.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "review.save"))
        assert saves == len(visits)
        assert conn.scalar(select(func.count()).select_from(Patient)) == (1 if visits else 0)
    report = check_integrity(store)
    assert report.ok, report.to_text()
    return visits


def test_kill_inside_open_transaction(
    db_url, data_dir, writer_cmd, subprocess_env, sample_images, make_lesion, make_review
):
    CaseStore.from_url(db_url, data_dir).close()  # schema ready before the writer starts
    writer = Writer(writer_cmd(db_url, str(data_dir), "--tag", "k", "--hang-after", "3"), subprocess_env)
    writer.wait_for(lambda lines: "flushed" in lines)
    # Rows of the 4th review have been sent to the database; its commit has not happened.
    writer.kill()
    assert len(writer.committed) == 3

    with CaseStore.from_url(db_url, data_dir) as store:
        assert _assert_consistent(store) == set(writer.committed)
        [patient] = store.search_patients(WRITER_PATIENT)
        assert [v.notes for v in store.patient_timeline(patient.id).visits] == ["k#0", "k#1", "k#2"]
        # No lock is left behind: the next review saves normally.
        store.save_review(
            make_review(
                [make_lesion(img, rank=i + 1, decision_action="monitor") for i, img in enumerate(sample_images[:3])],
                patient_identifier=WRITER_PATIENT,
                birth_year=1975,
                sex="male",
            )
        )
        assert len(_assert_consistent(store)) == 4


@pytest.mark.parametrize("seed", [1, 2])
def test_kill_at_random_moment(db_url, data_dir, writer_cmd, subprocess_env, seed):
    CaseStore.from_url(db_url, data_dir).close()
    writer = Writer(writer_cmd(db_url, str(data_dir), "--tag", f"r{seed}"), subprocess_env)
    writer.wait_for(lambda lines: any(line.startswith("committed") for line in lines))
    time.sleep(random.Random(seed).uniform(0.05, 0.4))
    writer.kill()
    committed = set(writer.committed)
    assert committed

    with CaseStore.from_url(db_url, data_dir) as store:
        visits = _assert_consistent(store)
    # Everything reported committed is there; at most one more (killed between commit and print).
    assert committed <= visits
    assert len(visits - committed) <= 1


def test_two_writers_lose_nothing(db_url, data_dir, writer_cmd, subprocess_env, tmp_path):
    # No schema yet: both writers also race the migration on start-up.
    go = tmp_path / "go"
    per_writer = 5
    writers = [
        Writer(
            writer_cmd(db_url, str(data_dir), "--tag", tag, "--count", str(per_writer), "--go-file", str(go)),
            subprocess_env,
        )
        for tag in ("a", "b")
    ]
    try:
        for w in writers:
            w.wait_for(lambda lines: "ready" in lines)
        Path(go).touch()
        for w in writers:
            w.finish()
    finally:  # a failed start must not leave the other writer waiting for the go file forever
        for w in writers:
            if w.proc.poll() is None:
                w.kill()

    with CaseStore.from_url(db_url, data_dir) as store:
        visits = _assert_consistent(store)
        assert visits == set(writers[0].committed) | set(writers[1].committed)
        assert len(visits) == 2 * per_writer
        [patient] = store.search_patients(WRITER_PATIENT)
        notes = sorted(v.notes for v in store.patient_timeline(patient.id).visits)
        assert notes == sorted(f"{tag}#{n}" for tag in "ab" for n in range(per_writer))
        # The image both writers uploaded every time is on disk once.
        shared = {
            les.image.sha256
            for v in store.patient_timeline(patient.id).visits
            for les in v.lesions
            if les.image.original_filename.endswith("-0.png")
        }
        assert len(shared) == 1
        assert len(list(store.data_dir.rglob(f"{shared.pop()}.*"))) == 1
