"""CSV files as people make them: any common encoding (UTF-8 with or without BOM, UTF-16 with or without a
BOM, else Windows-1252 or Latin-1, warned), comma, semicolon or tab separators, blank lines, each row's own line number
and, per row, why it could not be read as given; column names in any case. The dataset readers
(``data.readers``) build on it.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from data.errors import DatasetError

logger = logging.getLogger(__name__)


@dataclass
class CsvTable:
    """A CSV read cell by cell as text: `frame` (one row per data row, column names stripped), each row's line in
    the file (`lines`; the header is line 1 unless blank lines come first) and, per row, why it could not be read
    as given (`problems`, None for a good row; such a row keeps only its first len(header) cells)."""

    frame: pd.DataFrame
    lines: list[int]
    problems: list[str | None]


DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


def decode_csv(path: Path) -> str:
    """The file's text: UTF-8 (with or without BOM), UTF-16 (with a BOM, or mostly ASCII-range text without
    one, warned), else Windows-1252 / Latin-1 (spreadsheet exports on Windows) with a warning naming the
    encoding used."""
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DatasetError(
                f"{path.name}: starts like UTF-16 but is not readable as UTF-16 ({exc.reason})"
            ) from None
    unmarked = _utf16_without_bom(data)
    if unmarked:
        try:
            text = data.decode(unmarked)
        except UnicodeDecodeError as exc:
            raise DatasetError(
                f"{path.name}: looks like UTF-16 without a byte-order mark but is not readable as {unmarked} "
                f"({exc.reason}); save it again as CSV UTF-8"
            ) from None
        logger.warning("%s has no byte-order mark; read as %s", path.name, unmarked.upper())
        return text
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    for encoding, label in (("cp1252", "Windows-1252 (cp1252)"), ("latin-1", "Latin-1 (ISO-8859-1)")):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        logger.warning("%s is not UTF-8; read as %s: check that accented names came through", path.name, label)
        return text
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def _utf16_without_bom(data: bytes) -> str | None:
    """ "utf-16-le"/"utf-16-be" for UTF-16 text saved without a byte-order mark (some exporters do), else None.

    Text of ASCII-range characters in UTF-16 has a zero byte in every other position, which no CSV in an
    8-bit encoding has; without this check such a file decodes as Latin-1 with a NUL between letters and is
    refused as "missing image_name (found: i m a g e _ n a m e)"."""
    sample = data[:4096]
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    odd, even = sample[1::2].count(0), sample[0::2].count(0)
    if odd >= 0.9 * (len(sample) // 2) and even == 0:
        return "utf-16-le"
    if even >= 0.9 * (len(sample) // 2) and odd == 0:
        return "utf-16-be"
    return None


def sniff_delimiter(text: str) -> str:
    """',' unless the header (the first non-blank line, any line ending) splits into more fields on ';' or tab
    than on ',' (a spreadsheet's regional CSV); fields are counted as the csv module reads them, so a quoted
    name holding a comma does not decide it."""
    header = next((line for line in text.splitlines() if line.strip()), "")

    def fields(delimiter: str) -> int:
        """Fields on this delimiter, less those a quote was left inside (a quoted name split in the middle)."""
        cells = next(csv.reader([header], delimiter=delimiter), [])
        return len(cells) - sum('"' in cell for cell in cells)

    best = max(DELIMITERS, key=lambda d: (fields(d), d == ","))
    return best if fields(best) > 1 else ","


_SEPARATOR_LINE = re.compile(r"\A[ \t]*sep=(.)[ \t]*\r?\n")


def _excel_separator_line(text: str) -> tuple[str, str | None]:
    """Excel's "sep=;" first line (it writes one to say which separator follows): the text without it, and that
    separator; else the text as it is and None. It was read as the header ("found: sep=")."""
    match = _SEPARATOR_LINE.match(text)
    if match is None:
        return text, None
    return text[match.end() :], match.group(1)


def _unique_columns(header: list[str]) -> list[str]:
    """Stripped names; a repeated name gets .1, .2 (as pandas reads it)."""
    seen: dict[str, int] = {}
    names = []
    for raw in header:
        name = raw.strip()
        count = seen.get(name, 0)
        seen[name] = count + 1
        names.append(f"{name}.{count}" if count else name)
    return names


def parse_csv(path: Path) -> CsvTable:
    """Read a CSV row by row: a blank line is skipped, a short row is padded with empty cells, a row with more
    non-empty cells than the header is kept with its reason (CsvTable.problems) instead of failing the file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: CSV file not found")
    text = decode_csv(path)
    text, declared = _excel_separator_line(text)
    delimiter = declared or sniff_delimiter(text)
    if delimiter != ",":
        logger.warning("%s: read with %s-separated columns", path.name, DELIMITER_NAMES[delimiter])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    problems: list[str | None] = []
    skipped = 1 if declared else 0  # the file's own line numbers, the separator line counted
    line = 1 + skipped
    try:
        for fields in reader:
            first_line, line = line, reader.line_num + 1 + skipped
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # a blank line
            if header is None:
                header = _unique_columns(fields)
                continue
            rows.append((fields + [""] * len(header))[: len(header)])
            lines.append(first_line)
            problems.append(_width_problem(fields, len(header), first_line, delimiter))
    except csv.Error as exc:
        raise DatasetError(f"{path.name}: not a readable CSV file (line {reader.line_num}: {exc})") from None
    if header is None:
        raise DatasetError(f"{path.name} is empty: no header line (expected at least image_name)")
    if rows and text.count('"') % 2 and any("\n" in cell or "\r" in cell for cell in rows[-1]):
        # The csv module reads an unclosed quote to the end of the file, as one value: say so, with its line.
        raise DatasetError(
            f'{path.name}: line {lines[-1]}: a quote (") opens a value that is never closed, so every line after it '
            "was read into that value; close or remove the quote"
        )
    return CsvTable(pd.DataFrame(rows, columns=header, dtype=object).astype(str), lines, problems)


def _width_problem(fields: list[str], width: int, line: int, delimiter: str) -> str | None:
    extra = fields[width:]
    if not any(cell.strip() for cell in extra):
        return None  # trailing empty cells, as spreadsheets export them
    return (
        f"line {line} has {len(fields)} fields but the header has {width} (a value with an unquoted "
        f"{DELIMITER_NAMES[delimiter]}? quote it); not read"
    )


def read_csv(path: Path, required: Iterable[str]) -> pd.DataFrame:
    """A CSV whose every row must be readable (training data): a malformed row fails the file, naming its line."""
    table = parse_csv(path)
    bad = next((p for p in table.problems if p), None)
    if bad:
        raise DatasetError(f"{Path(path).name}: {bad}")
    return require_columns(table.frame, Path(path).name, required)


def _squashed(name: str) -> str:
    return "".join(c for c in name.casefold() if c.isalnum())


def match_columns(frame: pd.DataFrame, known: Iterable[str], source: str) -> pd.DataFrame:
    """Rename columns that are a known name in another case (Patient_ID, IMAGE_NAME) to it; an exact name wins.
    Columns left unused are warned about only when they look like a known one (age -> age_approx)."""
    known = list(known)
    by_key = {name.casefold(): name for name in known}
    renames: dict[str, str] = {}
    for column in frame.columns:
        target = by_key.get(column.strip().casefold())
        if target and target not in frame.columns and target not in renames.values():
            renames[column] = target
    frame = frame.rename(columns=renames)
    for column in frame.columns:
        if column in known:
            continue
        key, absent = _squashed(column), [n for n in known if n not in frame.columns]
        like = [n for n in absent if len(key) >= 3 and key in _squashed(n)]
        like += difflib.get_close_matches(column.casefold(), absent, n=1, cutoff=0.8)
        if like:
            logger.warning("%s: column %r is not used; did you mean %r?", source, column, like[0])
    return frame


def require_columns(frame: pd.DataFrame, name: str, required: Iterable[str]) -> pd.DataFrame:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DatasetError(
            f"{name} is missing required column(s): {', '.join(missing)} (found: {', '.join(frame.columns) or 'none'})"
        )
    return frame
