"""Row-level comparison by key ranges: sums per range, then bisection down to the exact keys.

A key's range is the first hex digits of the sha256 of its source key (``hashing.key_bucket``),
so both sides agree on it without sorting or collations. Each side sums its row hashes per range
(the expected side in Python while it rebuilds rows from the source, the target side in the
database, see ``rowhash``). Ranges whose (rows, sum) differ are split sixteen ways, one more hex
digit, and only the children that still differ are kept, until a range holds at most
``LEAF_ROWS`` rows; then the hashes of those few rows are fetched and compared key by key.

The expected rows of the differing ranges are rebuilt a second time (``rebuild``), transforming
only the rows in those ranges, so memory holds the range sums and a few ranges' rows, never a
table. At most ``MAX_DRILLED_RANGES`` first-level ranges are drilled; past that the comparison is
marked incomplete and each undrilled range counts as at least one difference.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from hashlib import sha256

from runbook_lib.db.canonical import SUM_MASK, canonical, key_bucket
from runbook_lib.validate.target_hashes import Sums, TargetRows

LEAF_ROWS = 64
MAX_DRILLED_RANGES = 128
MIN_WIDTH, MAX_WIDTH = 2, 4
_ROWS_PER_RANGE = 256

Expected = dict[str, tuple[int, tuple]]  # key → (row hash, values)


def first_width(rows: int) -> int:
    """Hex digits of the first comparison: about 256 rows a range, between 16**2 and 16**4 ranges."""
    width = MIN_WIDTH
    while width < MAX_WIDTH and rows > _ROWS_PER_RANGE * 16**width:
        width += 1
    return width


class KeyRanges:
    """Rows and hash sum per key range at one width; 16**width slots whatever the table's size."""

    def __init__(self, width: int) -> None:
        self.width = width
        size = 16**width
        self.rows = array("Q", bytes(8 * size))
        self.sums = array("Q", bytes(8 * size))
        self._shift = 16 - 4 * width

    def add(self, key: str, digest: int) -> None:
        # the first ``width`` hex digits of sha256(key), as a number: key_bucket without text
        slot = int.from_bytes(sha256(key.encode()).digest()[:2], "big") >> self._shift
        self.rows[slot] += 1
        self.sums[slot] = (self.sums[slot] + digest) & SUM_MASK

    @classmethod
    def from_sums(cls, width: int, sums: Sums) -> KeyRanges:
        ranges = cls(width)
        for prefix, (rows, total) in sums.items():
            slot = int(prefix, 16)
            ranges.rows[slot] = rows
            ranges.sums[slot] = total
        return ranges

    @property
    def total_rows(self) -> int:
        return sum(self.rows)

    def differing(self, other: KeyRanges) -> list[str]:
        if self.rows == other.rows and self.sums == other.sums:
            return []
        return [
            format(slot, f"0{self.width}x")
            for slot in range(len(self.rows))
            if self.rows[slot] != other.rows[slot] or self.sums[slot] != other.sums[slot]
        ]


@dataclass(frozen=True)
class RowDifference:
    """One key whose target row is not what the mapping says: missing, extra, changed, duplicate."""

    key: str
    kind: str
    columns: tuple[str, ...] = ()
    expected: tuple | None = None
    actual: tuple[tuple, ...] = ()  # every copy the target holds


@dataclass
class Comparison:
    """The outcome of comparing one source's expected rows with the target, and what it took."""

    method: str
    width: int
    expected_rows: int
    target_rows: int
    differing_ranges: int = 0
    undrilled_ranges: int = 0
    bisection_levels: int = 0
    leaf_ranges: int = 0
    hashes_fetched: int = 0
    rebuilt_rows: int = 0
    differences: list[RowDifference] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.undrilled_ranges == 0

    @property
    def difference_count(self) -> int:
        """Differences found, plus at least one per differing range left undrilled."""
        return len(self.differences) + self.undrilled_ranges

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "key_range_digits": self.width,
            "key_ranges": 16**self.width,
            "expected_rows": self.expected_rows,
            "target_rows": self.target_rows,
            "differing_ranges": self.differing_ranges,
            "undrilled_ranges": self.undrilled_ranges,
            "bisection_levels": self.bisection_levels,
            "leaf_ranges": self.leaf_ranges,
            "hashes_fetched": self.hashes_fetched,
            "rebuilt_rows": self.rebuilt_rows,
            "complete": self.complete,
        }


def compare(
    expected: KeyRanges,
    actual: KeyRanges,
    target: TargetRows,
    rebuild: Callable[[Sequence[str]], Expected],
) -> Comparison:
    """Find every differing key; ``rebuild(ranges)`` gives the expected rows in those ranges."""
    result = Comparison(
        method=target.method,
        width=expected.width,
        expected_rows=expected.total_rows,
        target_rows=actual.total_rows,
    )
    differing = expected.differing(actual)
    result.differing_ranges = len(differing)
    drilled = differing[:MAX_DRILLED_RANGES]
    result.undrilled_ranges = len(differing) - len(drilled)
    if not drilled:
        return result
    want = rebuild(drilled)
    result.rebuilt_rows = len(want)
    counts = {p: actual.rows[int(p, 16)] for p in drilled}
    leaves, result.bisection_levels = _bisect(drilled, counts, want, target, expected.width)
    result.leaf_ranges = len(leaves)
    have = target.digests(leaves)
    result.hashes_fetched = len(have)
    result.differences = _classify(want, have, leaves, target)
    return result


def _sums_of(want: Expected, width: int, parents: set[str]) -> Sums:
    sums: dict[str, list[int]] = {}
    for key, (digest, _values) in want.items():
        prefix = key_bucket(key, width)
        if prefix[:-1] in parents:
            entry = sums.setdefault(prefix, [0, 0])
            entry[0] += 1
            entry[1] = (entry[1] + digest) & SUM_MASK
    return {prefix: (rows, total) for prefix, (rows, total) in sums.items()}


def _bisect(
    ranges: list[str],
    target_counts: dict[str, int],
    want: Expected,
    target: TargetRows,
    width: int,
) -> tuple[list[str], int]:
    """Split differing ranges until each holds at most LEAF_ROWS rows on either side.

    A range whose rows all fall into one child twice running (one key held twice, say) is a
    leaf as it is: splitting it further would not make it smaller.
    """
    leaves: list[str] = []
    pending = {prefix: 0 for prefix in ranges}  # range → levels without getting smaller
    levels = 0
    while pending:
        want_counts: dict[str, int] = {}
        for key in want:
            prefix = key_bucket(key, width)
            want_counts[prefix] = want_counts.get(prefix, 0) + 1
        sizes = {p: (want_counts.get(p, 0), target_counts.get(p, 0)) for p in pending}
        big = [p for p in pending if max(sizes[p]) > LEAF_ROWS and pending[p] < 2]
        leaves.extend(p for p in pending if p not in big)
        if not big:
            break
        width += 1
        levels += 1
        theirs = target.bucket_sums(width, within=big)
        ours = _sums_of(want, width, set(big))
        target_counts = {p: rows for p, (rows, _total) in theirs.items()}
        children = sorted(p for p in set(theirs) | set(ours) if theirs.get(p) != ours.get(p))
        previous, pending = pending, {}
        for child in children:
            parent = child[:-1]
            same = (ours.get(child, (0, 0))[0], target_counts.get(child, 0)) == sizes[parent]
            pending[child] = previous[parent] + 1 if same else 0
    return leaves, levels


def natural_key(key: str) -> tuple:
    """Sort '9' before '10' and 'SO-000009' before 'SO-000010'."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key))


def _classify(
    want: Expected, have: list[tuple[str, int]], leaves: list[str], target: TargetRows
) -> list[RowDifference]:
    leaf_set = set(leaves)
    widths = sorted({len(p) for p in leaves})

    def in_leaves(key: str) -> bool:
        full = key_bucket(key, widths[-1])
        return any(full[:w] in leaf_set for w in widths)

    copies: dict[str, list[int]] = {}
    for key, digest in have:
        copies.setdefault(key, []).append(digest)
    expected = {key: entry for key, entry in want.items() if in_leaves(key)}
    kinds: dict[str, str] = {}
    for key in set(expected) | set(copies):
        ours, theirs = expected.get(key), copies.get(key, [])
        if ours is None:
            kinds[key] = "extra"
        elif not theirs:
            kinds[key] = "missing"
        elif len(theirs) > 1:
            kinds[key] = "duplicate"
        elif theirs[0] != ours[0]:
            kinds[key] = "changed"
    fetched: dict[str, list[tuple]] = {}
    for key, values in target.rows([k for k, kind in kinds.items() if kind != "missing"]):
        fetched.setdefault(key, []).append(values)
    differences = []
    for key in sorted(kinds, key=natural_key):
        ours = expected.get(key)
        values = ours[1] if ours else None
        actual = tuple(fetched.get(key, ()))
        columns: tuple[str, ...] = ()
        if kinds[key] == "changed" and actual:
            columns = tuple(
                name
                for name, want_value, have_value in zip(
                    target.columns, values, actual[0], strict=True
                )
                if canonical(want_value) != canonical(have_value)
            )
        differences.append(RowDifference(key, kinds[key], columns, values, actual))
    return differences
