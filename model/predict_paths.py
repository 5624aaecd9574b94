"""The predict CLI's output locations, checked before anything is scored: each must be writable, and none may
overwrite the input (the CSV, an image, the image folder) or another output (--out, its errors file, --cam).
Every problem raises DatasetError with the reason (the CLI exits 2)."""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
from pathlib import Path

import pandas as pd

from data.errors import DatasetError
from data.images import image_extensions


def errors_path_for(out: Path) -> Path:
    return out.with_name(out.stem + ".errors.csv")


def image_folder_for(input_path: Path, images: Path | None) -> Path | None:
    """Where the images are read from: the input folder itself, --images, or the CSV's name (test.csv -> test/)."""
    if input_path.is_dir():
        return input_path
    if images is not None:
        return images
    return input_path.with_suffix("") if input_path.suffix.lower() == ".csv" else None


def same_path(a: Path, b: Path) -> bool:
    """One location: the same resolved path (symlinks followed), or the same existing file (hard links)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def is_inside(path: Path, folder: Path) -> bool:
    """`path` is `folder` or somewhere under it (resolved)."""
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def check_regular_file(path: Path, what: str) -> None:
    """Raise DatasetError unless `path` is missing or a regular file (a symlink to one counts). Not "-" (a file
    is written, and its errors file beside it) nor a device, pipe or socket: the CSV is written beside it and
    renamed over it, which would replace /dev/stdout itself."""
    if str(path) == "-":
        raise DatasetError(f"{what} -: give a file name; the predictions and their errors file are written to files")
    try:
        info = path.stat()  # follows a symlink: its target is what gets written
    except (FileNotFoundError, NotADirectoryError):  # a path under a file: the folder check below says so
        info = None
    except OSError as exc:  # a symlink loop, a path through a file
        raise DatasetError(f"{what} {path}: {exc.strerror or exc}") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise DatasetError(f"{what} {path} is a folder; give a file name (e.g. {path / 'predictions.csv'})")
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise DatasetError(f"{what} {path} is not a regular file (a device, pipe or socket); give a file name")


def check_writable_file(path: Path, what: str) -> None:
    """Raise DatasetError unless `path`, already passed by check_regular_file, can be written (its folder is
    created when missing)."""
    if path.exists() and not os.access(path, os.W_OK):
        raise DatasetError(f"{what} {path} exists and is not writable")
    parent = path.parent
    _make_writable_folder(
        parent,
        not_a_folder=f"{what} {path}: {parent} is not a folder",
        cannot_create=f"{what} {path}: cannot create its folder",
        not_writable=f"{what} {path}: the folder {parent} is not writable",
    )


def check_writable_folder(path: Path, what: str) -> None:
    _make_writable_folder(
        path,
        not_a_folder=f"{what} {path} is not a folder",
        cannot_create=f"{what} {path}: cannot create it",
        not_writable=f"{what} {path} is not writable",
    )


def _make_writable_folder(folder: Path, not_a_folder: str, cannot_create: str, not_writable: str) -> None:
    """Create `folder` (and its parents) or raise DatasetError with the message for what went wrong."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DatasetError(not_a_folder) from None
    except OSError as exc:
        raise DatasetError(f"{cannot_create} ({exc.strerror or exc})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatasetError(not_writable)


def _check_file_spares_inputs(path: Path, what: str, input_path: Path, images: Path | None) -> None:
    """A file output must not be the input CSV, nor a file the run reads from the image folder."""
    if input_path.is_file() and same_path(path, input_path):
        raise DatasetError(f"{what} {path} is the input file {input_path}; choose another name")
    if images is None or not images.is_dir() or path.resolve().parent != images.resolve():
        return
    # In an input folder every file is read as an image; in a CSV's --images folder, files with an image extension.
    reads_it = input_path.is_dir() or path.suffix.lower() in image_extensions()
    if path.is_file() and reads_it:
        raise DatasetError(f"{what} {path} is an input image in {images}; write it outside the image folder")


def _check_cam_spares_inputs(cam: Path, input_path: Path, images: Path | None) -> None:
    """Overlays are written as <cam>/<image_id>.png: never into (or under) the folder the images are read from,
    where they would replace the originals, and never onto the input CSV."""
    for folder, what in ((images, "the image folder"), (input_path, "the input")):
        if folder is not None and folder.exists() and is_inside(cam, folder):
            raise DatasetError(
                f"--cam {cam} is {what} {folder} or inside it: the overlays would overwrite or mix with the "
                "original images; choose a separate folder"
            )


def check_outputs(args: argparse.Namespace) -> None:
    """Every output location, checked before anything is scored."""
    out, errors, cam = args.out, errors_path_for(args.out), args.cam
    check_regular_file(out, "--out")  # first: the checks below resolve paths, which a symlink loop breaks
    check_regular_file(errors, "the errors file")
    images = image_folder_for(args.input, args.images)
    for path, what in ((out, "--out"), (errors, "the errors file")):
        _check_file_spares_inputs(path, what, args.input, images)
    if cam is not None:
        _check_cam_spares_inputs(cam, args.input, images)
        for path, what in ((out, "--out"), (errors, f"the errors file of --out {out}")):
            if same_path(path, cam):
                raise DatasetError(f"--cam {cam} and {what} are the same path; give the overlays their own folder")
    check_writable_file(out, "--out")
    check_writable_file(errors, "the errors file")
    if cam is not None:
        check_writable_folder(cam, "--cam")


class WriteError(OSError):
    """An output that could not be written after scoring; the message names the path and the reason."""


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` to a temporary file beside `path`, then rename it over `path`: a failed write (disk full,
    permission) leaves no half-written file and raises WriteError naming `path`. A symlink is followed: its
    target is replaced, the link stays."""
    path = path.resolve() if path.is_symlink() else path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except OSError as exc:
        raise WriteError(f"could not write {path}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def remove_stale(path: Path) -> None:
    """Remove an errors file left by an earlier run (this run had no errors); WriteError when it cannot be."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise WriteError(f"could not remove the earlier run's {path}: {exc.strerror or exc}") from None
