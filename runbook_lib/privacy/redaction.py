"""Hiding secrets in text: one pattern, used by every module that shows a URL or an error."""

from __future__ import annotations

import re

# scheme://user:password@  (the user may be empty: redis://:password@host)
_URL_WITH_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@")


def redact_text(text: str) -> str:
    """Hide passwords of any URLs embedded in free text (error messages, logs)."""
    return _URL_WITH_PASSWORD.sub(r"\g<scheme>\g<user>:***@", text)
