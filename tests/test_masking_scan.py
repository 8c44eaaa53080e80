"""The scanner that proves evidence holds no personal data in clear text, and its own test.

``PersonalData`` reads every email, phone, full name and street of the demo sources from their
SQLite files; ``test_evidence.py`` scans a whole chain of runs with it. Here it must find values
planted in the forms evidence could hold them (upper-cased email, E.164 phone, JSON-escaped Chinese
name, a Western name lower-cased with doubled spaces), so a clean scan means something.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
from pathlib import Path

_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\(?\d[\d ().+-]{5,}\d")
_WORDS = re.compile(r"[A-Za-z]+(?:[ \t]+[A-Za-z]+)*")
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


class PersonalData:
    """Every email, phone, full name and street address of the demo sources, in searchable forms.

    * emails compare lower-cased and stripped; phones by their digits, raw and as E.164 (parsed as
      CN and US numbers), so ``138-1234-5678``, ``13812345678`` and ``+8613812345678`` all count;
      values with fewer than 7 digits (``000``, ``unknown``) identify nobody and are skipped;
    * Chinese names of 3+ characters count anywhere inside Chinese text; 2-character names only
      as a whole run of Chinese characters (``王博`` inside ``王博物馆`` is not a name);
    * Western full names count as whole words in any case and spacing; one-word names (``Cher``)
      only capitalized;
    * text is read with JSON ``\\uXXXX`` escapes and HTML entities decoded.
    """

    def __init__(self, work: Path) -> None:
        import phonenumbers

        rows = [
            (*row, None)
            for row in _query(
                work / "legacy_b.db",
                "SELECT first_name || ' ' || last_name, email, mobile FROM customers",
            )
        ]
        rows += _query(work / "legacy_a.db", "SELECT full_name, email, phone, address FROM users")
        rows += [
            (*row, None)
            for row in _query(work / "crm.db", "SELECT name, email, phone FROM old_crm_customers")
        ]
        self.emails, self.phones, self.names, self.streets = set(), set(), set(), set()
        for name, email, phone, address in rows:
            if email and email.strip():
                self.emails.add(email.strip().lower())
            digits = re.sub(r"\D", "", phone or "")
            if len(digits) >= 7:
                self.phones.add(digits)
                for region in ("CN", "US"):
                    try:
                        number = phonenumbers.parse(phone, region)
                    except phonenumbers.NumberParseException:
                        continue
                    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                    self.phones.add(e164.lstrip("+"))
            if name and name.strip():
                cjk = _CJK_RUN.search(name)
                self.names.add("".join(name.split()) if cjk else " ".join(name.split()).lower())
            if address:
                self.streets |= {run for run in _CJK_RUN.findall(address) if len(run) >= 6}
        self.longest = max(len(name.split()) for name in self.names)

    def leaks(self, text: str) -> list[tuple[str, str]]:
        found = [("email", m) for m in _EMAIL.findall(text) if m.lower() in self.emails]
        for match in _PHONE.findall(text):
            if {re.sub(r"\D", "", match), *re.findall(r"\d+", match)} & self.phones:
                found.append(("phone", match))
        for run in _CJK_RUN.findall(text):
            if run in self.names:
                found.append(("name", run))
            for size in (3, 4):
                found += [
                    ("name", run[i : i + size])
                    for i in range(len(run) - size + 1)
                    if len(run) > size and run[i : i + size] in self.names
                ]
            found += [("address", street) for street in self.streets if street in run]
        for run in _WORDS.findall(text):
            words = run.split()
            for size in range(1, self.longest + 1):
                for i in range(len(words) - size + 1):
                    window = words[i : i + size]
                    if " ".join(window).lower() in self.names and (size > 1 or window[0].istitle()):
                        found.append(("name", " ".join(window)))
        return found

    def scan(self, folder: Path) -> list[tuple[str, str, str]]:
        """(file, kind, value) of every clear-text personal value under ``folder``."""
        seen: dict[str, list[tuple[str, str]]] = {}  # plotly.js repeats in every file: scan once
        hits = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            text = path.read_bytes().decode("utf-8", errors="replace")
            text = html.unescape(_UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text))
            for line in text.split("\n"):
                if line not in seen:
                    seen[line] = self.leaks(line)
                hits += [(str(path.relative_to(folder)), *leak) for leak in seen[line]]
        return hits


def _query(database: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return list(connection.execute(sql))


def test_the_scanner_finds_planted_personal_data_in_every_form(ci_demo, ci_project, tmp_path):
    personal = PersonalData(ci_project / "work" / "ci")
    (name, email, phone), (western, *_rest) = (
        _query(
            ci_project / "work" / "ci" / "legacy_a.db",
            "SELECT full_name, email, phone FROM users "
            "WHERE full_name GLOB '[一-龥][一-龥]' AND length(phone) >= 11",
        )[0],
        _query(
            ci_project / "work" / "ci" / "crm.db",
            "SELECT name FROM old_crm_customers WHERE name GLOB '[A-Z]*[a-z] [A-Z][a-z]*'",
        )[0],
    )
    digits = re.sub(r"\D", "", phone)[-11:]
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "a.ipynb").write_text(json.dumps({"text": f"customer {name} called"}))
    (planted / "b.html").write_text(f"<td>{email.upper()}</td><td>+86 {digits}</td>")
    (planted / "c.json").write_text(json.dumps([western.lower().replace(" ", "  ")]))
    kinds = {(file, kind) for file, kind, _value in personal.scan(planted)}
    assert kinds == {
        ("a.ipynb", "name"),
        ("b.html", "email"),
        ("b.html", "phone"),
        ("c.json", "name"),
    }
