"""Score images from the command line.

    python -m model.predict [--checkpoint DIR] --input CSV_OR_FOLDER [--images DIR] --out predictions.csv
                            [--tta N] [--batch-size N] [--cam DIR [--cam-method gradcam]]

The output starts with the Kaggle submission columns image_name,target (target = P(melanoma)). When the input
CSV has patient ids (patient_id), the whole-patient triage columns follow: patient_id, ugly_duckling (robust
z within the patient, empty below 3 lesions), triage_score and patient_rank (1 = look first); then tta_spread
and tta_views (the test-time augmentation used: the model's own, from its checkpoint, unless --tta is given).

Every argument and output location is checked before anything is scored (exit 2 with the reason). Rows and
files that cannot be scored never abort the run: a missing file, a name that is a path, a formula or carries
its extension, a repeated row, an image that breaks an input rule or cannot be decoded; each is reported
on stderr and in <out>.errors.csv (image_id,image_path,reason). The exit status is 1 when nothing
could be scored, or when an output could not be written after scoring (the message names the file; each file is
written whole or not at all).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from data.errors import DatasetError
from data.readers import read_folder, read_kaggle
from data.spreadsheet_cells import defuse_formula
from model.checkpoint import CheckpointError
from model.predict_paths import WriteError, check_outputs, errors_path_for, remove_stale, write_csv
from model.predictor import MAX_TTA, Predictor
from model.triage_table import output_table

log = logging.getLogger("model.predict")

EXIT_NOTHING_SCORED = 1
EXIT_USAGE = 2  # a bad argument, input, output location or checkpoint: nothing was scored
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as a shell reports it


def read_input(input_path: Path, images: Path | None) -> pd.DataFrame:
    if input_path.is_dir():
        return read_folder(input_path, keep_problems=True)
    if not input_path.exists():
        raise DatasetError(f"--input {input_path} does not exist")
    if input_path.suffix.lower() != ".csv":
        raise DatasetError(f"--input must be a CSV file or a folder of images, got {input_path}")
    images = images or input_path.with_suffix("")  # test.csv -> test/
    return read_kaggle(input_path, images, dataset="input", on_missing="keep")


def _views(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of views from 1 to {MAX_TTA}, got {text!r}") from None
    if not 1 <= value <= MAX_TTA:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_TTA} views, got {value}")
    return value


def _batch_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of images, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _cam_method(text: str) -> str:
    from model.cam_methods import method_name

    try:
        return method_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from model.cam_methods import CAM_METHODS, DEFAULT_METHOD  # the registry names the choices (imported on use)

    parser = argparse.ArgumentParser(prog="python -m model.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="checkpoint folder (default: committed model)")
    parser.add_argument("--input", type=Path, required=True, help="Kaggle-layout CSV (image_name, …) or image folder")
    parser.add_argument("--images", type=Path, default=None, help="image folder for a CSV input (default: CSV name)")
    parser.add_argument("--out", type=Path, required=True, help="predictions CSV to write")
    parser.add_argument(
        "--tta",
        type=_views,
        default=None,
        help=f"test-time augmentation views, 1-{MAX_TTA} (default: the model's, as the dashboard uses)",
    )
    parser.add_argument("--batch-size", type=_batch_size, default=32, help="images per forward pass (default 32)")
    parser.add_argument("--cam", type=Path, default=None, help="write one Grad-CAM overlay PNG per image here")
    parser.add_argument(
        "--cam-method",
        type=_cam_method,
        default=DEFAULT_METHOD,
        help=f"{', '.join(CAM_METHODS)} (default {DEFAULT_METHOD})",
    )
    return parser.parse_args(argv)


def write_results(args: argparse.Namespace, records: pd.DataFrame, scored, predictor: Predictor) -> Path:
    """The predictions and the errors file (an earlier run's is removed when there are none); returns the
    errors file's path. WriteError when either cannot be written."""
    table = output_table(records, scored, predictor)
    table["tta_views"] = scored.tta  # appended last: the existing columns keep their order
    if "patient_id" in table:
        table["patient_id"] = table["patient_id"].map(defuse_formula)
    write_csv(table, args.out)
    errors_path = errors_path_for(args.out)
    if not len(scored.errors):
        remove_stale(errors_path)
        return errors_path
    shown = 20  # the errors file has them all; the terminal gets a readable summary
    for err in scored.errors.head(shown).itertuples():
        print(f"error: {err.image_id}: {err.reason}", file=sys.stderr)
    if len(scored.errors) > shown:
        print(f"error: … and {len(scored.errors) - shown} more (see {errors_path})", file=sys.stderr)
    defused = {c: scored.errors[c].map(defuse_formula) for c in ("image_id", "image_path")}
    write_csv(scored.errors.assign(**defused), errors_path)
    return errors_path


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the reason (or --help)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        check_outputs(args)
        records = read_input(args.input, args.images)
        predictor = Predictor.from_checkpoint(args.checkpoint, batch_size=args.batch_size)
        tta = args.tta if args.tta is not None else predictor.tta
    except (DatasetError, CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if records.empty:
        print(f"error: no images listed in {args.input}", file=sys.stderr)
        return EXIT_NOTHING_SCORED

    bar = tqdm(total=len(records), unit="img", desc="scoring", disable=len(records) < 16, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    try:
        scored = predictor.predict_records(records, tta=tta, progress=progress)
    except KeyboardInterrupt:  # Ctrl-C: one line, not torch's traceback; nothing was written yet
        bar.close()
        print(f"interrupted: nothing written ({args.out} is as it was)", file=sys.stderr)
        return EXIT_INTERRUPTED
    bar.close()

    try:
        errors_path = write_results(args, records, scored, predictor)
    except WriteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOTHING_SCORED
    if args.cam is not None and len(scored.scores):
        from model.cam import write_overlays

        try:
            written = write_overlays(predictor, scored.scores, args.cam, method=args.cam_method)
        except OSError as exc:
            print(f"error: could not write the overlays to --cam {args.cam}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_NOTHING_SCORED
        except ValueError as exc:
            print(f"error: --cam: {exc} (the predictions were written to {args.out})", file=sys.stderr)
            return EXIT_USAGE
        print(f"{len(written)} Grad-CAM overlay(s) -> {args.cam}", file=sys.stderr)

    print(
        f"scored {len(scored.scores)} of {len(records)} image(s) with {scored.tta} TTA view(s) -> {args.out}"
        + (f"; {len(scored.errors)} error(s) -> {errors_path}" if len(scored.errors) else ""),
        file=sys.stderr,
    )
    return 0 if len(scored.scores) else EXIT_NOTHING_SCORED


if __name__ == "__main__":
    raise SystemExit(main())
