"""The output-safety helper and the audit CSV: user text is shown as typed, never interpreted."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from dashboard.audit_view import audit_csv, day_range
from dashboard.store.records import AuditRecord
from dashboard.textsafe import WORD_JOINER, literal

PUNCT = r"[!-/:-@\[-`{-~]"
PAYLOADS = [
    "![x](http://host/x.png)",
    "<img src=http://host/y.png onerror=alert(1)>",
    "<script>alert(1)</script>",
    "[click](javascript:alert(1))",
    ":red[big] :material/warning: $e^x$ **bold** _it_ `code` ~~s~~",
    "# heading\n---\n> quote\n1. list\n- item\n| a | b |",
    "&lt;img src=x&gt; &amp;",
    "back\\slash \\![x](y) \\: \\@",
    "see www.example.org or mail jane.doe@example.org, https://example.org/x",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_markdown_or_html_character_is_escaped(payload):
    out = literal(payload)
    # Outside backslash escapes and the helper's own character references, no ASCII punctuation is left
    # for a Markdown/HTML parser to act on.
    assert not re.search(PUNCT, re.sub(r"\\" + PUNCT, "", out))
    # Nothing left for GFM to turn into a link (a word joiner sits before the ":", the "www" dot, the "@").
    assert not re.search(r"(?i)(https?|ftp)\\:|www\\\.|[-.\w+]\\@", out)
    # Unescaping gives back exactly what was typed (line breaks kept as hard breaks).
    assert unescape(out).replace("  \n", "\n") == payload


def unescape(markdown: str) -> str:
    """What the reader sees: backslash escapes resolved, the invisible word joiners gone."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown.replace(WORD_JOINER, ""))


def test_control_characters_are_dropped_and_none_is_empty():
    assert literal("a\x00b\x1bc") == "abc"
    assert literal(None) == ""
    assert literal(42) == "42"
    assert literal("Dr Ünal – 北京") == "Dr Ünal – 北京"


def test_audit_csv_defuses_formulas_and_keeps_ids():
    when = dt.datetime(2026, 1, 31, 12, 0, tzinfo=dt.UTC)
    events = [
        AuditRecord(1, when, "=cmd|' /C calc'!A0", "auth.login_failed", None, {"via": "password"}),
        AuditRecord(2, when, "dr.ada", "decision.record", 7, {"model_id": "m1", "lesion_id": 3}),
    ]
    lines = audit_csv(events).splitlines()
    assert lines[0] == "time (UTC),user,action,patient id,model,detail"
    assert lines[1].startswith("2026-01-31 12:00:00,'=cmd|")
    assert lines[2].startswith("2026-01-31 12:00:00,dr.ada,decision.record,7,m1,")
    assert day_range((dt.date(2026, 1, 1), dt.date(2026, 1, 2))) == (
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 3, tzinfo=dt.UTC),
    )
    assert day_range(()) == (None, None)
