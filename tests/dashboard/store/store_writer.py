"""Helper process for the crash and concurrency tests (not a test module).

    python store_writer.py URL DATA_DIR --tag T [--count N] [--hang-after N] [--go-file F]

Saves reviews of one patient (3 lesions each, all decided) and prints
``committed <visit_id>`` after each commit returns. ``--count 0`` saves until
killed. ``--hang-after N``: after N commits, the next save stops right after
its flush (rows sent, transaction still open), prints ``flushed`` and sleeps
until killed. ``--go-file``: wait for that file before saving, so several
writers start together.
"""

from __future__ import annotations

import argparse
import io
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image
from sqlalchemy import event
from sqlalchemy.orm import Session

from dashboard.store import CaseStore, LesionReview, ReviewToSave

PATIENT = "PSEUDO-CRASH"
LESIONS_PER_REVIEW = 3


def image(seed: int) -> bytes:
    img = Image.new("RGB", (40, 32), ((seed * 53) % 256, (seed * 97) % 256, (seed * 29) % 256))
    img.putpixel((seed % 40, (seed // 40) % 32), (255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def make_review(tag: str, n: int) -> ReviewToSave:
    # Lesion 0 uses the same bytes in every writer: concurrent identical uploads.
    seeds = [0] + [zlib.crc32(f"{tag}/{n}/{k}".encode()) % 100_000 + 1 for k in range(1, LESIONS_PER_REVIEW)]
    return ReviewToSave(
        patient_identifier=PATIENT,
        birth_year=1975,
        sex="male",
        clinician=f"writer-{tag}",
        visit_time=datetime.now(UTC),
        model_version="m-test",
        model_checksum="c" * 64,
        notes=f"{tag}#{n}",
        lesions=[
            LesionReview(
                image_bytes=image(seed),
                original_filename=f"{tag}-{n}-{k}.png",
                site="torso",
                lesion_label=f"{tag}-{n}-{k}",
                p_melanoma=0.1 * (k + 1),
                ugly_duckling=0.5,
                triage_score=0.2 * (k + 1),
                rank=k + 1,
                decision_action="monitor",
                decision_comment=f"{tag}#{n}",
            )
            for k, seed in enumerate(seeds)
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("data_dir")
    parser.add_argument("--tag", required=True)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--hang-after", type=int, default=-1)
    parser.add_argument("--go-file")
    args = parser.parse_args()

    store = CaseStore.from_url(args.url, args.data_dir)
    print("ready", flush=True)
    if args.go_file:
        while not Path(args.go_file).exists():
            time.sleep(0.01)

    n = 0
    while args.count == 0 or n < args.count:
        if n == args.hang_after:

            @event.listens_for(Session, "after_flush")
            def hang(session: Session, _ctx: object) -> None:
                print("flushed", flush=True)
                time.sleep(3600)

        visit_id = store.save_review(make_review(args.tag, n))
        print(f"committed {visit_id}", flush=True)
        n += 1
    print("done", flush=True)


if __name__ == "__main__":
    main()
