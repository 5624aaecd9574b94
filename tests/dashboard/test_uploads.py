"""Uploads without Streamlit: single files (limits, bad files, a good one) and zip archives (members, junk,
bombs)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from PIL import Image

from dashboard.uploads import UploadLimits, UploadProblem, check_image, expand_upload


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height (no real pixel data): a decompression-bomb probe."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _jpeg(size=(64, 48), colour=(180, 120, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


# ---------------------------------------------------------------- single files


def test_bad_files_get_a_named_reason(patient_lesions):
    real = patient_lesions[0].data
    cases = {
        "empty.jpg": (b"", "empty"),
        "truncated.jpg": (real[: len(real) // 3], "truncated"),
        "notes.txt": (b"patient notes, not an image", "not an image"),
        "fake.jpg": (b"\xff\xd8\xff\xe0" + b"garbage" * 50, ""),
    }
    for name, (data, words) in cases.items():
        problem = check_image(name, data)
        assert isinstance(problem, UploadProblem), name
        assert problem.filename == name and problem.kind == "error"
        assert words in problem.reason.lower()


def test_huge_images_are_refused_from_the_header_alone():
    problem = check_image("scan.png", _png_header_only(20_000, 20_000))
    assert isinstance(problem, UploadProblem)
    assert "too large" in problem.reason and "400 megapixels" in problem.reason


def test_oversized_files_are_refused():
    limits = UploadLimits(max_file_bytes=1000)
    problem = check_image("big.jpg", _jpeg((400, 400), (10, 200, 30)) + b"\0" * 1000, limits)
    assert isinstance(problem, UploadProblem) and "limit" in problem.reason


def test_a_good_image_gives_facts_and_a_thumbnail(patient_lesions):
    facts, thumb = check_image("a.jpg", patient_lesions[0].data)
    assert facts["image_format"] == "JPEG" and facts["width"] == 512 and len(facts["sha256"]) == 64
    assert max(thumb.size) <= 384


# ---------------------------------------------------------------- zips


def test_zip_members_are_expanded_and_junk_skipped(other_lesions):
    data = _zip(
        {
            "visit/" + other_lesions[0].name: other_lesions[0].data,
            "visit/" + other_lesions[1].name: other_lesions[1].data,
            "__MACOSX/visit/._x.jpg": b"junk",
            ".DS_Store": b"junk",
            "visit/inner.zip": _zip({"a.jpg": other_lesions[2].data}),
        }
    )
    items = list(expand_upload("lesions.zip", data))
    files = [i for i in items if not isinstance(i, UploadProblem)]
    problems = [i for i in items if isinstance(i, UploadProblem)]
    assert [name for name, _ in files] == [
        f"lesions.zip/visit/{other_lesions[0].name}",
        f"lesions.zip/visit/{other_lesions[1].name}",
    ]
    assert len(problems) == 1 and "inside a zip" in problems[0].reason


def test_zip_bombs_and_oversized_archives_are_refused():
    bomb = _zip({"bomb.jpg": b"\0" * 5_000_000})
    (problem,) = list(expand_upload("bomb.zip", bomb))
    assert isinstance(problem, UploadProblem) and "zip-bomb" in problem.reason

    many = _zip({f"{i}.jpg": b"x" for i in range(20)}, zipfile.ZIP_STORED)
    (problem,) = list(expand_upload("many.zip", many, UploadLimits(max_zip_members=10)))
    assert "at most 10" in problem.reason

    big = _zip({"a.jpg": b"x" * 5000, "b.jpg": b"y" * 5000}, zipfile.ZIP_STORED)
    (problem,) = list(expand_upload("big.zip", big, UploadLimits(max_zip_uncompressed=6000)))
    assert "unpacks to" in problem.reason

    (problem,) = list(expand_upload("broken.zip", b"PK\x03\x04 not really a zip"))
    assert "damaged" in problem.reason


def _patched_zip(members: dict[str, bytes], patch) -> bytes:
    """A stored zip whose headers ``patch(data, local_header_offset, central_entry_offset)`` rewrites."""
    data = bytearray(_zip(members, zipfile.ZIP_STORED))
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    patch(data, local, central)
    return bytes(data)


def test_a_password_protected_member_is_reported_not_read():
    def encrypted(data: bytearray, local: int, central: int) -> None:
        data[local + 6] |= 0x1  # general-purpose flag bit 0: encrypted
        data[central + 8] |= 0x1

    (problem,) = list(expand_upload("locked.zip", _patched_zip({"a.jpg": _jpeg()}, encrypted)))
    assert isinstance(problem, UploadProblem) and problem.filename == "locked.zip/a.jpg"
    assert "encrypted (password-protected)" in problem.reason


def test_a_member_larger_than_its_header_says_is_not_taken_in():
    def under_declared(data: bytearray, local: int, central: int) -> None:
        struct.pack_into("<I", data, local + 22, 500)  # uncompressed size
        struct.pack_into("<I", data, central + 24, 500)

    (problem,) = list(expand_upload("lie.zip", _patched_zip({"a.jpg": b"x" * 5000}, under_declared)))
    assert isinstance(problem, UploadProblem) and problem.filename == "lie.zip/a.jpg"
    assert "cannot be extracted" in problem.reason  # zipfile stops at the declared size: the CRC fails


class _Stream:
    """A member's data as a reader that does not stop at the header's size (counts what it hands out)."""

    def __init__(self, size: int, handed_out: list[int]) -> None:
        self.left, self.handed_out = size, handed_out

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        self.handed_out.append(n)
        return b"x" * n


def test_members_are_read_at_most_one_byte_over_the_limit_whatever_their_header_says(monkeypatch):
    """Never trust the header: a member that streams on is cut one byte over the per-image limit, and an
    archive whose members together unpack to more than the zip limit is stopped."""
    limits = UploadLimits(max_file_bytes=1000, max_zip_uncompressed=2500)
    handed_out: list[int] = []
    sizes = {"big.jpg": 1_000_000, "a.jpg": 1000, "b.jpg": 1000, "c.jpg": 1000, "d.jpg": 1000}
    archive = _zip({name: b"x" * 10 for name in sizes}, zipfile.ZIP_STORED)  # each header says 10 bytes
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info, *a, **k: _Stream(sizes[info.filename], handed_out))
    items = list(expand_upload("lie.zip", archive, limits))
    assert max(handed_out) == limits.max_file_bytes + 1  # the 1 MB member was never read whole
    assert isinstance(items[0], UploadProblem) and items[0].filename == "lie.zip/big.jpg"
    assert "over the limit" in items[0].reason
    assert [name for name, _ in items[1:3]] == ["lie.zip/a.jpg", "lie.zip/b.jpg"]
    stopped = items[3]
    assert isinstance(stopped, UploadProblem) and stopped.filename == "lie.zip"
    assert "more than its header says; stopped reading" in stopped.reason
    assert len(items) == 4 and len(handed_out) == 4  # d.jpg is not opened
