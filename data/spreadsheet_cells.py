"""Cells a spreadsheet program would run as a formula ("CSV injection"), for every CSV the project writes:
the predict CLI's tables, the case-history and outcome exports, the audit trail. No pandas here, so the store
uses it too."""

from __future__ import annotations

# A cell starting with one of these is run as a formula by Excel, LibreOffice and Google Sheets.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def starts_like_formula(text: str) -> bool:
    return text.startswith(FORMULA_PREFIXES)


def defuse_formula(value: object) -> object:
    """A text cell a spreadsheet would run as a formula, written with a leading apostrophe (OWASP's advice for
    CSV files); any other value unchanged."""
    return f"'{value}" if isinstance(value, str) and starts_like_formula(value) else value
