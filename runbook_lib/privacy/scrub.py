"""The last line of defence against secrets (and stray personal data) in evidence.

Secrets reach ``runbook_lib`` only through environment variables, but an exception message, a
printed value or a traceback can still carry one into an executed notebook. Everything that leaves
a run — notebook outputs, tracebacks, manifest errors, what the CLI prints — passes through
``scrub_text`` (URL passwords, the literal values of secret-looking environment variables, and the
row values a database quotes in its errors: ``hide_row_values``) and, for error text,
``scrub_error`` (also email addresses).
``protect_kernel`` installs the same scrubbing on the IPython kernel's tracebacks, so a failing cell
never writes the secret even into papermill's intermediate saves.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from runbook_lib.privacy.masking import mask_emails_in_text

HIDDEN = "***"
# literal values shorter than this are not scrubbed (they would blank out ordinary text);
# URL passwords of any length are still hidden by the URL pattern of ``redact_text``
MIN_SECRET_LENGTH = 6
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|SIGNING_KEY", re.IGNORECASE)
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*\]")
HIDDEN_VALUES = "values hidden"
# What a database quotes of the row it refused, per dialect: each pattern keeps the words around
# the values (what refused, which columns) and drops the values. A value may hold a newline, so a
# value runs to the words that close it, but at most ``_SPAN`` characters (the patterns stay
# linear on any text); a longer one is hidden to the end of its line by the fallbacks after it.
_SPAN = r"(?s:.{0,2000}?)"
_END = r"(?=\s*(?:\n|\\n|\Z|[\"'),\]]))"
_KEY = r"(Key \((?:[^()\n]|\([^()\n]*\)){0,500}\)=\()"
ROW_VALUE_PATTERNS: tuple[tuple[re.Pattern, str], ...] = (
    # SQLAlchemy: the statement's parameters (a load's parameters are source rows)
    (_SQL_PARAMETERS, "[parameters: hidden from evidence]"),
    # PostgreSQL: DETAIL:  Key (last_name, first_name)=(O'Hara, Scarlett) already exists.
    (
        re.compile(
            _KEY + _SPAN + r"(\) (?:already exists|is not present in table|is still referenced"
            r" from table|conflicts with (?:existing )?key))"
        ),
        rf"\1{HIDDEN_VALUES}\2",
    ),
    (re.compile(_KEY + r"(?!values hidden\))[^\n]*"), rf"\1{HIDDEN_VALUES})"),
    # PostgreSQL: DETAIL:  Failing row contains (4, Wilkes, Ashley, bad-phone, null).
    (re.compile(r"(Failing row contains \()" + _SPAN + r"\)\." + _END), rf"\1{HIDDEN_VALUES})."),
    (
        re.compile(r"(Failing row contains \()(?!values hidden\))[^\n]*"),
        rf"\1{HIDDEN_VALUES}).",
    ),
    # PostgreSQL: invalid input syntax for type integer: "Tara" (and enum, range, literal, bytes)
    (
        re.compile(
            r"((?:invalid input (?:syntax|value)|out of range|malformed [\w ]{1,40} literal|"
            r"invalid byte sequence)[^:\n]{0,200}): \"[^\n]{0,2000}?\"(?=[\s,.;)\]'\\]|\Z)"
        ),
        rf"\1: [{HIDDEN_VALUES}]",
    ),
    (
        re.compile(r"\bvalue \"[^\n]{0,2000}?\" is out of range"),
        f"value [{HIDDEN_VALUES}] is out of range",
    ),
    # PostgreSQL: CONTEXT:  COPY people, line 3, column phone: "..." / portal parameter $1 = '...'
    (
        re.compile(r"(COPY [^,\n]{1,200}, line \d+)(?:, column [^:\n]{1,200})?: [^\n]*"),
        rf"\1: [{HIDDEN_VALUES}]",
    ),
    (re.compile(r"(portal parameter \$\d+) = '[^\n]*"), rf"\1 = [{HIDDEN_VALUES}]"),
    # MySQL/MariaDB: Duplicate entry 'O'Hara-Scarlett' for key 'uq_people_name'
    (re.compile(r"(Duplicate entry )'" + _SPAN + r"'( for key )"), rf"\1[{HIDDEN_VALUES}]\2"),
    (re.compile(r"(Duplicate entry )'[^\n]*"), rf"\1[{HIDDEN_VALUES}]"),
    # MySQL/MariaDB: Incorrect date value: '1990-13-45' for column `born` at row 1
    (
        re.compile(
            r"((?:Incorrect|Truncated incorrect) [\w ]{1,40} value: )'[^\n]{0,2000}?'"
            r"(?= for column|\s*$|\"|\))"
        ),
        rf"\1[{HIDDEN_VALUES}]",
    ),
    (
        re.compile(r"((?:Incorrect|Truncated incorrect) [\w ]{1,40} value: )'[^\n]*"),
        rf"\1[{HIDDEN_VALUES}]",
    ),
)
# The one pattern of a password in a URL: scheme://user:password@ (the user may be empty:
# redis://:password@host).
URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@"
)


def hide_row_values(text: str) -> str:
    """``text`` with the row values a database error quotes replaced (PostgreSQL, MySQL/MariaDB).

    SQLite names only the constraint or its columns, never the values. What refused the row (the
    constraint, the columns of a key) stays, so the error still says what to fix.
    """
    for pattern, replacement in ROW_VALUE_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_text(text: str) -> str:
    """Hide the password of every URL in free text (error messages, logs)."""
    return URL_PASSWORD.sub(r"\g<scheme>\g<user>:***@", text)


def secret_values(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Values to hide: passwords of URLs held in environment variables, and secret-named values.

    A URL's password is hidden both as written (percent-encoded) and decoded.
    """
    environ = os.environ if environ is None else environ
    found: set[str] = set()
    for name, value in environ.items():
        if not value:
            continue
        if "://" in value:
            found |= _url_secrets(value)
        elif _SECRET_NAME.search(name):
            found.add(value)
    return frozenset(v for v in found if len(v) >= MIN_SECRET_LENGTH)


def _url_secrets(value: str) -> set[str]:
    try:
        url = make_url(value)
    except Exception:  # noqa: BLE001 - not a SQLAlchemy URL: fall back to the raw userinfo
        match = URL_PASSWORD.search(value)
        return {match["password"]} if match else set()
    found = set()
    if url.password:
        found.add(str(url.password))
        raw = URL_PASSWORD.search(value)
        if raw:
            found.add(raw["password"])
    for key, item in url.query.items():
        if re.search(r"pass|secret|token|key", key, re.IGNORECASE):
            found |= {item} if isinstance(item, str) else set(item)
    return found


def scrub_text(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with URL passwords, every known secret value and quoted row values hidden."""
    if not text:
        return text
    text = hide_row_values(redact_text(text))
    values = secret_values() if secrets is None else secrets
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, HIDDEN)
    return text


def scrub_error(text: str, secrets: Iterable[str] | None = None) -> str:
    """Error text for evidence: ``scrub_text`` (secrets, row values), email addresses masked.

    The one place an error becomes text for evidence, the CLI and the manifest: SQLAlchemy appends
    the failing statement's parameters, PostgreSQL a ``DETAIL`` quoting the key or the failing row,
    MySQL the duplicate entry; in a load those are source rows, so personal data.
    """
    return mask_emails_in_text(scrub_text(text or "", secrets))


def scrub_notebook(path: Path, secrets: Iterable[str] | None = None) -> bool:
    """Scrub every source, output and error of an executed notebook in place; True if it changed."""
    import nbformat

    values = secret_values() if secrets is None else frozenset(secrets)
    node = nbformat.read(path, as_version=4)
    changed = False
    for cell in node.cells:
        new_source = scrub_text(cell.source, values)
        changed |= new_source != cell.source
        cell.source = new_source
        for output in cell.get("outputs", []):
            changed |= _scrub_output(output, values)
    if changed:
        nbformat.write(node, path)
    return changed


def _scrub_output(output: dict, secrets: frozenset[str]) -> bool:
    before = repr(output)
    if output.get("output_type") == "error":
        output["evalue"] = scrub_error(output.get("evalue", ""), secrets)
        output["traceback"] = [scrub_error(line, secrets) for line in output.get("traceback", [])]
    if "text" in output:
        output["text"] = scrub_text(_joined(output["text"]), secrets)
    for mimetype, value in list(output.get("data", {}).items()):
        output["data"][mimetype] = _scrub_value(value, secrets)
    return repr(output) != before


def _scrub_value(value: Any, secrets: frozenset[str]) -> Any:
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, list):
        return [_scrub_value(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: _scrub_value(item, secrets) for key, item in value.items()}
    return value


def _joined(text: str | list[str]) -> str:
    return "".join(text) if isinstance(text, list) else text


class ScrubbingWriter:
    """A text stream that scrubs each complete line before passing it on (kernel output → CLI)."""

    def __init__(self, stream, secrets: Iterable[str] | None = None) -> None:
        self._stream = stream
        self._secrets = frozenset(secret_values() if secrets is None else secrets)
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._stream.write(scrub_text(line, self._secrets) + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._stream.write(scrub_text(self._pending, self._secrets))
            self._pending = ""
        self._stream.flush()


def protect_kernel() -> bool:
    """Scrub tracebacks shown by the running IPython kernel (no-op outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    show = getattr(shell, "_showtraceback", None)
    if show is None or getattr(show, "_runbook_scrubbed", False):
        return False

    def scrubbed(etype, evalue, stb):
        secrets = secret_values()
        return show(
            etype, scrub_error(str(evalue), secrets), [scrub_error(s, secrets) for s in stb]
        )

    scrubbed._runbook_scrubbed = True
    shell._showtraceback = scrubbed
    return True
