"""Score images from the command line.

    python -m model.predict [--checkpoint DIR] --input CSV_OR_FOLDER [--images DIR] --out predictions.csv
                            [--tta N] [--cam DIR [--cam-method gradcam]]

The output starts with the Kaggle submission columns image_name,target (target = P(melanoma)). When the input
CSV has patient ids (patient_id), the whole-patient triage columns follow: patient_id, ugly_duckling (robust
z within the patient, empty below 3 lesions), triage_score and patient_rank (1 = look first); then tta_spread.
Broken images never abort the run: each is reported on stderr and in <out>.errors.csv; the exit status
is non-zero only when nothing could be scored.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from data.readers import DatasetError, read_folder, read_kaggle
from model.checkpoint import CheckpointError
from model.predictor import Predictor
from model.triage import output_table

log = logging.getLogger("model.predict")


def read_input(input_path: Path, images: Path | None) -> pd.DataFrame:
    if input_path.is_dir():
        return read_folder(input_path)
    if input_path.suffix.lower() != ".csv":
        raise DatasetError(f"--input must be a CSV file or a folder of images, got {input_path}")
    images = images or input_path.with_suffix("")  # test.csv -> test/
    return read_kaggle(input_path, images, dataset="input", on_missing="keep")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="checkpoint folder (default: committed model)")
    parser.add_argument("--input", type=Path, required=True, help="Kaggle-layout CSV (image_name, …) or image folder")
    parser.add_argument("--images", type=Path, default=None, help="image folder for a CSV input (default: CSV name)")
    parser.add_argument("--out", type=Path, required=True, help="predictions CSV to write")
    parser.add_argument("--tta", type=int, default=1, help="test-time augmentation views, 1-8 (default 1)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cam", type=Path, default=None, help="write one Grad-CAM overlay PNG per image here")
    parser.add_argument(
        "--cam-method", default="gradcam", help="gradcam, gradcam++, layercam or eigencam (default gradcam)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    try:
        records = read_input(args.input, args.images)
        predictor = Predictor.from_checkpoint(args.checkpoint, batch_size=args.batch_size)
    except (DatasetError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if records.empty:
        print(f"error: no images listed in {args.input}", file=sys.stderr)
        return 1

    bar = tqdm(total=len(records), unit="img", desc="scoring", disable=len(records) < 16, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    scored = predictor.predict_records(records, tta=args.tta, progress=progress)
    bar.close()

    table = output_table(records, scored, predictor)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)

    errors_path = args.out.with_name(args.out.stem + ".errors.csv")
    if len(scored.errors):
        shown = 20  # the errors file has them all; the terminal gets a readable summary
        for err in scored.errors.head(shown).itertuples():
            print(f"error: {err.image_id}: {err.reason}", file=sys.stderr)
        if len(scored.errors) > shown:
            print(f"error: … and {len(scored.errors) - shown} more (see {errors_path})", file=sys.stderr)
        scored.errors.to_csv(errors_path, index=False)
    elif errors_path.exists():
        errors_path.unlink()

    if args.cam is not None and len(scored.scores):
        from model.cam import write_overlays

        try:
            written = write_overlays(predictor, scored.scores, args.cam, method=args.cam_method)
        except ValueError as exc:
            print(f"error: --cam: {exc}", file=sys.stderr)
            return 2
        print(f"{len(written)} Grad-CAM overlay(s) -> {args.cam}", file=sys.stderr)

    print(
        f"scored {len(scored.scores)} of {len(records)} image(s) -> {args.out}"
        + (f"; {len(scored.errors)} error(s) -> {errors_path}" if len(scored.errors) else ""),
        file=sys.stderr,
    )
    return 0 if len(scored.scores) else 1


if __name__ == "__main__":
    raise SystemExit(main())
