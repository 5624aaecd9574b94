"""One helper for showing user-supplied text literally in anything Streamlit renders as Markdown.

Streamlit escapes HTML in Markdown (unless ``unsafe_allow_html``), but renders Markdown itself: an
identifier written ``![x](http://host/x.png)`` would become an image the browser fetches, ``# ...`` a
heading, ``:red[...]`` coloured text, ``$...$`` LaTeX, a bare URL a link. ``literal`` backslash-escapes
every ASCII punctuation character (CommonMark lets any of them be escaped, and an escaped ``<`` or ``&`` is
plain text, so no HTML or entity survives either), puts an invisible word joiner (U+2060) where GFM would
otherwise make a bare URL or e-mail address a link, drops control characters and keeps line breaks.

Use it for every patient identifier, lesion label, filename, clinician or user name, note, comment and
search text placed in ``st.markdown``/``st.caption``/``st.title``/alerts/toasts/labels/radio options.
Plain-text widgets (``st.text``, dataframes, selectbox options, input values) need no escaping.
"""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?i)(?<=https)(?=\\:)|(?<=http)(?=\\:)|(?<=ftp)(?=\\:)|(?<=www)(?=\\\.)|(?=\\@)")


def literal(value: object) -> str:
    """``value`` as Markdown that renders exactly as the text (no links, images, HTML, formatting)."""
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    text = _PUNCT.sub(r"\\\1", text)
    # GFM turns bare "http://…", "www.…" and e-mail addresses into links after parsing, escapes or not;
    # an invisible word joiner before the ":", the "www" dot or the "@" keeps them plain text.
    text = _AUTOLINK.sub(WORD_JOINER, text)
    # A hard line break keeps the writer's lines; never a blank line (that would start a new block).
    return "  \n".join(line for line in text.split("\n"))
