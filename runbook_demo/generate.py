"""Seeded, streaming generation of the demo's three legacy sources, with known defects.

The scenario merges two legacy order systems (the original Chinese shop ``legacy_a`` and the
acquired US shop ``legacy_b``) and an old CRM into one new schema. ``build_demo_sources`` fills the
tables of ``legacy_schema`` and returns a ``DemoSummary`` whose ``seeded_defects`` says exactly how
many of each defect it planted, so that profiling, dedup and reconciliation can be checked.

Every row is a pure function of ``(seed, table, row index)``: each entity draws from its own
``random.Random(f"{seed}:{table}:{index}")`` and calls only ``random()``, the one method whose
sequence Python promises to keep across versions. Which rows carry a defect is decided by
``_Roles``, a keyed permutation of the row indexes: defect counts are exact, defects are spread
through each table and never share a row or a person, and no table is ever held in memory. The
chunk size changes how rows are written, never which rows.
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from runbook_demo import legacy_schema as ls
from runbook_demo.legacy_schema import (
    CRM_METADATA,
    LEGACY_A_METADATA,
    LEGACY_B_METADATA,
    MAJOR_DATE_FORMAT,
    TRUTH_METADATA,
)
from runbook_lib.errors import RunbookError

__all__ = [
    "CRM_METADATA",
    "LEGACY_A_METADATA",
    "LEGACY_B_METADATA",
    "NAME_KINDS",
    "TRUTH_METADATA",
    "DemoSummary",
    "build_demo_sources",
]

MIN_ORDERS = 100
UNKNOWN_STATUS = 9
ZERO_DATETIME = "0000-00-00 00:00:00"  # as PyMySQL returns a zero DATETIME
CHINESE_SINGLE, CHINESE_COMPOUND = "chinese_single_surname", "chinese_compound_surname"
WESTERN_TWO, WESTERN_SINGLE = "western_two_part", "western_single_name"
WESTERN_SPACES, WESTERN_MULTI = "western_extra_spaces", "western_three_plus_parts"
NAME_KINDS = (CHINESE_SINGLE, CHINESE_COMPOUND, WESTERN_TWO, WESTERN_MULTI, WESTERN_SINGLE)
NAME_KINDS += (WESTERN_SPACES,)

_TABLES = {
    "legacy_a": (ls.A_USERS, ls.A_PRODUCTS, ls.A_ORDERS, ls.A_ORDER_ITEMS, ls.A_CARTS),
    "legacy_b": (ls.B_CUSTOMERS, ls.B_SALES_ORDERS, ls.B_SALES_ORDER_LINES),
    "crm": (ls.CRM_CUSTOMERS,),
}
_TABLES["legacy_a"] += (ls.A_LOGISTICS, ls.A_INVENTORY_LOG, ls.A_USER_EVENTS)
_CUSTOMER_TABLES = (("legacy_a", "users"), ("legacy_b", "customers"), ("crm", "old_crm_customers"))

# --- time ---------------------------------------------------------------------------------------

# Legacy A times are naive Asia/Shanghai wall time; Shanghai has had no DST since 1991, so every
# generated local time exists exactly once.
_LOCAL_BASE = datetime(2021, 1, 1)
# Legacy B instants start at noon UTC so that their New York dates fall in 2021 too.
_B_BASE_EPOCH = int(datetime(2021, 1, 1, 12, tzinfo=UTC).timestamp())
_NEW_YORK = ZoneInfo("America/New_York")
# Generated instants lie in [0, _SPAN) seconds after a base; payment and delivery add at most ten
# days, so every date stays within 2021-01-01..2024-12-31.
_SPAN = int((datetime(2024, 12, 21) - _LOCAL_BASE).total_seconds())
_HOUR, _DAY = 3600, 86400
# The roles that give a legacy A row one of the minority date formats.
_FORMAT_ROLES = dict(
    zip(("fmt_slash", "fmt_compact", "fmt_iso"), ls.A_DATE_FORMATS[1:], strict=True)
)


def _local_text(t: int, fmt: str = MAJOR_DATE_FORMAT) -> str:
    return (_LOCAL_BASE + timedelta(seconds=t)).strftime(fmt)


def _slot_time(i: int, n: int, r: Random) -> int:
    # Row i owns the i-th of n equal slices of the span, so times grow with ids as in a real
    # append-only table; row 0 opens the span so that it precedes every row that refers to it.
    lo, hi = i * _SPAN // n, (i + 1) * _SPAN // n
    return lo if i == 0 else lo + int(r.random() * (hi - lo))


def _created_before(t: int, n: int, r: Random) -> int:
    # Only rows whose whole slice ends by t are eligible, so the referenced row is never newer.
    return 1 + int(r.random() * max(1, t * n // _SPAN))


# --- seeded choices -----------------------------------------------------------------------------


def _below(r: Random, n: int) -> int:
    return int(r.random() * n)


def _pick(r: Random, seq):
    return seq[int(r.random() * len(seq))]


def _cumulative(weights: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sum(weights[: j + 1]) for j in range(len(weights)))


def _weighted(r: Random, values: tuple, cumulative: tuple[int, ...]):
    return values[bisect_right(cumulative, int(r.random() * cumulative[-1]))]


def _key(text: str) -> int:
    # A stable 64-bit key (never hash(): it is salted per process).
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _scramble(x: int, space: int, key: int) -> int:
    """A keyed bijection of range(space): distinct inputs give distinct, random-looking outputs."""
    bits = max(4, (space - 1).bit_length())
    mask, half, key = (1 << bits) - 1, bits // 2, key & ((1 << bits) - 1)
    # Cycle-walking: a permutation of range(2**bits), applied again until the value is in range.
    while True:
        for multiplier in (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D):
            x = ((x ^ key) * multiplier) & mask
            x ^= x >> half
        if x < space:
            return x


def _money(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)


# --- roles: exact, disjoint, spread-out defect placement ----------------------------------------


class _Roles:
    """Disjoint roles with exact counts, spread over the rows 0..n-1 of one table.

    Row ``i`` has rank ``p = g_inv * (i - h) mod n``; ranks ``[0, c1)`` carry the first role, the
    next ``c2`` the second, and so on. Both directions are O(1), so a row's role, and the row of
    the k-th member of a role, are computed, never stored. ``g`` near ``0.618 n`` spreads the
    members of each role evenly through the table.
    """

    def __init__(self, n: int, counts: Mapping[str, int], salt: str) -> None:
        if sum(counts.values()) > n:
            raise ValueError(f"{salt}: roles {dict(counts)} do not fit in {n} rows")
        g = max(1, n * 618_034 // 1_000_000)
        while math.gcd(g, n) != 1:
            g += 1
        self.n, self.g, self.g_inv, self.h = n, g, pow(g, -1, n), _key(salt) % n
        self.counts = dict(counts)
        self.names = list(counts)
        self.ends = _cumulative(tuple(counts.values()))

    def role(self, i: int) -> tuple[str | None, int]:
        """The role of row i (None for a plain row) and its rank k within that role."""
        rank = (self.g_inv * (i - self.h)) % self.n
        j = bisect_right(self.ends, rank)
        if j == len(self.names):
            return None, 0
        return self.names[j], rank - (self.ends[j] - self.counts[self.names[j]])

    def index(self, name: str, k: int) -> int:
        """The row index of the k-th member of role ``name``."""
        j = self.names.index(name)
        return (self.g * (self.ends[j] - self.counts[name] + k) + self.h) % self.n


def _share(n: int, basis_points: int) -> int:
    return max(2, n * basis_points // 10_000)  # at least two, so tiny demos still show each defect


_NAME_ROLES = {"name_single": 50, "name_spaces": 100, "name_multi": 100, "name_compound": 200}
_FORMAT_SHARES = dict(zip(_FORMAT_ROLES, (300, 200, 200), strict=True))
_KIND_BY_ROLE = {
    "name_single": WESTERN_SINGLE,
    "name_spaces": WESTERN_SPACES,
    "name_multi": WESTERN_MULTI,
    "name_compound": CHINESE_COMPOUND,
}


@dataclass(frozen=True)
class _Plan:
    """Table sizes, role placements and the catalog's prices: all derived from (orders, seed)."""

    seed: int
    n: dict[str, int]
    roles: dict[str, _Roles]
    cny_fen: tuple[int, ...]
    usd_cents: tuple[int, ...]

    @classmethod
    def create(cls, orders: int, seed: int) -> _Plan:
        users, b = max(60, orders * 14 // 100), max(30, orders * 6 // 100)
        crm = max(30, orders * 3 // 100)
        n_a = orders * 7 // 10
        n = {"users": users, "customers": b, "old_crm_customers": crm, "orders": n_a}
        n |= {"sales_orders": orders - n_a, "carts": users // 2, "user_events": orders * 3 // 10}
        n |= {"products": max(50, min(5000, orders // 200)), "inventory_log": max(20, orders // 50)}
        # Persons in several systems; the A record comes first, else the B record.
        in3, ab = _share(crm, 100), _share(b, 150)
        ac, bc = _share(crm, 150), _share(crm, 150)
        pairs = _share(users, 50)  # persons with a second legacy A account
        specs = {
            "users": {"shared3": in3, "ab": ab, "ac": ac, "pair_1": pairs, "pair_2": pairs}
            | {"bad_email": _share(users, 100), "bad_phone": _share(users, 100)}
            | {k: _share(users, bp) for k, bp in (_NAME_ROLES | _FORMAT_SHARES).items()},
            "customers": {"shared3": in3, "ab": ab, "bc": bc}
            | {"bad_email": _share(b, 100), "bad_phone": _share(b, 100)},
            "old_crm_customers": {"shared3": in3, "ac": ac, "bc": bc}
            | {"bad_email": _share(crm, 100), "bad_phone": _share(crm, 100)}
            | {k: _share(crm, bp // 2) for k, bp in _NAME_ROLES.items()},
            "orders": {"orphan": _share(n_a, 50), "negative_qty": _share(n_a, 50)}
            | {"null_amount": _share(n_a, 30), "null_order_time": _share(n_a, 30)}
            | {"unknown_status": _share(n_a, 20)}
            | {k: _share(n_a, bp) for k, bp in _FORMAT_SHARES.items()}
            | {"zero_delivery": _share(n_a, 30)},
            "sales_orders": {
                "orphan": _share(orders - n_a, 50),
                "negative_qty": _share(orders - n_a, 50),
            },
        }
        roles = {table: _Roles(n[table], c, f"{seed}:{table}") for table, c in specs.items()}
        # The catalog has at most 5,000 rows whatever the size, so its prices may stay in memory.
        cny = tuple(_product(seed, j)["price"] for j in range(n["products"]))
        return cls(seed, n, roles, cny, tuple(max(99, fen * 10 // 71) for fen in cny))

    def pid(self, system: str, index: int) -> int:
        """A person's id in the truth: the global number of the person's first source record."""
        offset = {"legacy_a": 0, "legacy_b": self.n["users"]}
        return offset.get(system, self.n["users"] + self.n["customers"]) + index + 1

    def sku(self, r: Random) -> str:
        """A random SKU of the catalog."""
        return f"SKU-{_below(r, self.n['products']) + 1:05d}"


# --- persons ------------------------------------------------------------------------------------

# Share of Chinese names among the persons first recorded in each system, in percent.
_CHINESE_SHARE = {"legacy_a": 80, "legacy_b": 15, "crm": 50}
_CN_SPACE = len(ls.CN_MOBILE_PREFIXES) * 10**8
_US_SPACE = len(ls.US_AREA_CODES) * len(ls.US_EXCHANGES) * 10**4
_TAG_SPACE = 10**7


@dataclass(frozen=True, slots=True)
class _Person:
    pid: int
    kind: str
    first: str  # truth first_name: the given name, or every Western token but the last
    last: str | None  # truth last_name: the surname; None for a single name
    email: str  # canonical: lower case, no spaces
    cc: str  # country calling code: "86" or "1"
    nsn: str  # national significant number, digits only
    shape: int
    variant: int


def _person(plan: _Plan, system: str, index: int, kind: str | None = None) -> _Person:
    """The person first recorded as row ``index`` of ``system``; any other system derives it too."""
    r = Random(f"{plan.seed}:person:{system}:{index}")
    pid = plan.pid(system, index)
    if kind is None:
        kind = CHINESE_SINGLE if _below(r, 100) < _CHINESE_SHARE[system] else WESTERN_TWO
    if kind in (CHINESE_SINGLE, CHINESE_COMPOUND):
        surnames = ls.COMPOUND_SURNAMES if kind == CHINESE_COMPOUND else ls.SINGLE_SURNAMES
        last, last_py = _pick(r, surnames)
        chars = [_pick(r, ls.GIVEN_NAME_CHARS) for _ in range(1 + _below(r, 2))]
        first, first_py = "".join(c for c, _ in chars), "".join(p for _, p in chars)
        local = f"{first_py}.{last_py}" if _below(r, 2) else f"{last_py}{first_py}"
    else:
        parts = [_pick(r, ls.WESTERN_FIRST_NAMES)]
        if kind == WESTERN_MULTI:
            parts += [_pick(r, ls.WESTERN_FIRST_NAMES) for _ in range(1 + _below(r, 2))]
        first = " ".join(parts)
        last = None if kind == WESTERN_SINGLE else _pick(r, ls.WESTERN_LAST_NAMES)
        local = parts[0].lower() if last is None else f"{parts[0]}.{last}".lower()
    # Distinct pids give distinct email tags and phones, so no two persons share either.
    tag = _scramble(pid, _TAG_SPACE, _key(f"{plan.seed}:email"))
    email = f"{local}{tag}@{_pick(r, ls.EMAIL_DOMAINS)}"
    if system == "legacy_b":
        x = _scramble(pid, _US_SPACE, _key(f"{plan.seed}:phone:1"))
        area, rest = divmod(x, len(ls.US_EXCHANGES) * 10**4)
        cc, nsn = "1", f"{ls.US_AREA_CODES[area]}{ls.US_EXCHANGES[rest // 10**4]}{rest % 10**4:04d}"
    else:
        x = _scramble(pid, _CN_SPACE, _key(f"{plan.seed}:phone:86"))
        cc, nsn = "86", f"{ls.CN_MOBILE_PREFIXES[x // 10**8]}{x % 10**8:08d}"
    return _Person(pid, kind, first, last, email, cc, nsn, _below(r, 12), _below(r, 6))


def _one_field_name(p: _Person, r: Random) -> str:
    if p.kind in (CHINESE_SINGLE, CHINESE_COMPOUND):
        return f"{p.last}{p.first}"  # surname first, no space
    if p.last is None:
        return p.first
    if p.kind == WESTERN_SPACES:
        pattern = _pick(r, ("{f}  {l}", " {f} {l}", "{f} {l}  ", "  {f}   {l} "))
        return pattern.format(f=p.first, l=p.last)
    return f"{p.first} {p.last}"


def _phone(p: _Person, system: str, shape: int) -> str:
    shapes = ls.PHONE_SHAPES[(system, p.cc)]
    n = p.nsn
    a, b, c = (n[:3], n[3:7], n[7:]) if p.cc == "86" else (n[:3], n[3:6], n[6:])
    return shapes[shape % len(shapes)].format(n=n, a=a, b=b, c=c)


def _email_variant(email: str, variant: int) -> str:
    """The same address differing only by case (variants 0-2) or also by surrounding spaces."""
    local, domain = email.split("@")
    title = ".".join(part.capitalize() for part in local.split(".")) + "@" + domain.capitalize()
    forms = (title, email.upper(), email.capitalize(), f" {email} ", f"{email}  ", f" {title} ")
    return forms[variant % len(forms)]


def _invalid_email(p: _Person, r: Random) -> str:
    local, domain = p.email.split("@")
    forms = (
        f"{local}.{domain}",  # no @ at all
        f"{local}@{domain.split('.')[0]}",  # no top-level domain
        f"{local}@@{domain}",
        f"{local[:2]} {local[2:]}@{domain}",
        f"{local}..@{domain}",
    )
    return _pick(r, forms)


def _invalid_phone(p: _Person, r: Random) -> str:
    n = p.nsn
    k = 3 + _below(r, len(n) - 4)
    # A letter in place of a digit: phonenumbers drops it and too few digits remain. Never 'x' or
    # three letters: those read as an extension or as a vanity number, which can be valid.
    forms = (n[: 5 + _below(r, 3)], n[:k] + _pick(r, "Ol") + n[k + 1 :], "N/A", "unknown", "000")
    return _pick(r, forms)


def _customer(plan: _Plan, system: str, table: str, i: int) -> tuple[dict, dict, bool, str]:
    """One customer record: (row, truth of its person, duplicate of an earlier record?, kind)."""
    roles = plan.roles
    role, k = roles[table].role(i)
    home_system, home = system, i
    if role in ("shared3", "ab", "ac") and system != "legacy_a":
        home_system, home = "legacy_a", roles["users"].index(role, k)
    elif role == "bc" and system == "crm":
        home_system, home = "legacy_b", roles["customers"].index(role, k)
    elif role in ("pair_1", "pair_2"):
        home = min(i, roles[table].index("pair_2" if role == "pair_1" else "pair_1", k))
    duplicate = (home_system, home) != (system, i)
    p = _person(plan, home_system, home, _KIND_BY_ROLE.get(role))
    r = Random(f"{plan.seed}:{system}.{table}:{i}")
    email, phone = p.email, _phone(p, system, p.shape)
    if duplicate and system == "legacy_a":
        # A second account of the same person: the email differs by case only.
        email, phone = _email_variant(p.email, p.variant % 3), _phone(p, system, p.shape + 1)
    elif duplicate:
        email = _email_variant(p.email, p.variant + (3 if system == "crm" else 0))
    elif role == "bad_email":
        email = _invalid_email(p, r)
    elif role == "bad_phone":
        phone = _invalid_phone(p, r)
    if system == "legacy_a":
        row = _a_user(plan, i, r, p, _FORMAT_ROLES.get(role, MAJOR_DATE_FORMAT))
        row |= {"email": email, "phone": phone}
    elif system == "legacy_b":
        t = _B_BASE_EPOCH + _slot_time(i, plan.n[table], r)
        registered = datetime.fromtimestamp(t, _NEW_YORK).strftime(ls.B_REGISTERED_FORMAT)
        row = {"customer_id": i + 1, "first_name": p.first, "last_name": p.last}
        row |= {"email": email, "mobile": phone, "registered": registered}
    else:
        row = {"id": i + 1, "name": _one_field_name(p, r), "email": email, "phone": phone}
    truth = {"person_id": p.pid, "first_name": p.first, "last_name": p.last}
    truth["email_normalized"] = None if role == "bad_email" else p.email
    truth["phone_e164"] = None if role == "bad_phone" else f"+{p.cc}{p.nsn}"
    return row, truth, duplicate, p.kind


def _a_user(plan: _Plan, i: int, r: Random, p: _Person, fmt: str) -> dict[str, Any]:
    handle = "".join(ch for ch in p.email.split("@")[0] if ch.isalpha())
    if p.kind not in (CHINESE_SINGLE, CHINESE_COMPOUND):
        handle = p.first.split()[0].lower()
    t = _slot_time(i, plan.n["users"], r)
    secret = f"{plan.seed}:password:{i}".encode()
    if t < _SPAN // 2:  # the shop's first years stored unsalted sha256, later accounts bcrypt
        password_hash = hashlib.sha256(secret).hexdigest()
    else:
        alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        digest = hashlib.sha512(secret).digest()
        password_hash = "$2b$12$" + "".join(alphabet[byte % 64] for byte in digest[:53])
    city, districts = _pick(r, ls.CITIES)
    address = f"{city}{_pick(r, districts)}{_pick(r, ls.ROADS)}{1 + _below(r, 999)}号"
    return {
        "id": i + 1,
        "username": f"{handle}{i + 1}",
        "password_hash": password_hash,
        "full_name": _one_field_name(p, r),
        "address": f"{address}{1 + _below(r, 30)}栋{101 + _below(r, 2400)}室",
        "created_at": _local_text(t, fmt),
    }


def _product(seed: int, j: int) -> dict[str, Any]:
    r = Random(f"{seed}:legacy_a.products:{j}")
    category, brands, nouns, low, high = _pick(r, ls.CATEGORIES)
    brand = _pick(r, brands)
    price = (low + _below(r, high - low)) // 100 * 100 + _pick(r, (0, 0, 90, 99))
    return {
        "sku": f"SKU-{j + 1:05d}",
        "name": f"{brand} {_pick(r, nouns)} {_pick(r, 'AXSMP')}{1 + _below(r, 20)}",
        "category": category,
        "brand": brand,
        "stock": _below(r, 2000),
        "price": price,
        "market_price": price * (100 + _below(r, 50)) // 100,
        "is_active": int(r.random() < 0.9),  # a TINYINT(1) flag: 0/1
    }


# --- orders and activity ------------------------------------------------------------------------

_STATUS_CUM = _cumulative((5, 10, 10, 55, 20))  # pending, paid, shipped, completed, cancelled
_LINES_CUM, _QUANTITY_CUM = _cumulative((60, 30, 10)), _cumulative((70, 18, 7, 3, 2))
_EVENT_CUM = _cumulative((70, 20, 10))


def _order_lines(r: Random, prices: tuple[int, ...]) -> list[tuple[str, int, int]]:
    """1-3 (sku, quantity, unit price) lines with distinct SKUs."""
    chosen: list[int] = []
    for _ in range(_weighted(r, (1, 2, 3), _LINES_CUM)):
        s = _below(r, len(prices))
        while s in chosen:
            s = _below(r, len(prices))
        chosen.append(s)
    lines = []
    for s in chosen:
        price = prices[s] * 9 // 10 if r.random() < 0.15 else prices[s]  # a promotion
        lines.append((f"SKU-{s + 1:05d}", _weighted(r, (1, 2, 3, 4, 5), _QUANTITY_CUM), price))
    return lines


def _write_a_orders(plan: _Plan, sinks: dict[str, _Sink], tally: Counter) -> None:
    roles, n, n_users = plan.roles["orders"], plan.n["orders"], plan.n["users"]
    for i in range(n):
        r = Random(f"{plan.seed}:legacy_a.orders:{i}")
        role, _ = roles.role(i)
        t = _slot_time(i, n, r)
        if role == "orphan":  # points past the last user, like an account deleted without orders
            user = n_users + 1 + _below(r, n_users)
        else:
            user = _created_before(t, n_users, r)
        lines = _order_lines(r, plan.cny_fen)
        status = _weighted(r, tuple(ls.A_STATUS_NAMES), _STATUS_CUM)
        status = UNKNOWN_STATUS if role == "unknown_status" else status
        status = 3 if role == "zero_delivery" else status  # completed: it has a delivery time
        paid = status in (1, 2, 3, UNKNOWN_STATUS) or (status == 4 and r.random() < 0.5)
        pay = t + 30 + _below(r, 1800) if paid else None
        order_time = _local_text(t, _FORMAT_ROLES.get(role, MAJOR_DATE_FORMAT))
        amount = _money(sum(q * price for _, q, price in lines))
        row = {"id": i + 1, "user_id": user, "status": status}
        row["amount"] = None if role == "null_amount" else amount
        row["order_time"] = None if role == "null_order_time" else order_time
        row["pay_time"] = None if pay is None else _local_text(pay)
        sinks["orders"].add(row)
        for k, (sku, q, price) in enumerate(lines):
            quantity = -q if role == "negative_qty" and k == 0 else q
            item = {"id": sinks["order_items"].added + 1, "order_id": i + 1, "sku": sku}
            sinks["order_items"].add(item | {"quantity": quantity, "unit_price": _money(price)})
        shipped = pay is not None and status in (2, 3)
        if shipped:
            zero = role == "zero_delivery"
            _add_shipment(sinks["logistics"], r, i + 1, pay, completed=status == 3, zero=zero)
        tally[(role, "order_items")] += len(lines)
        tally[(role, "logistics")] += shipped


def _add_shipment(
    sink: _Sink, r: Random, order_id: int, pay: int, *, completed: bool, zero: bool
) -> None:
    carrier, prefix = _pick(r, ls.CARRIERS)
    shipped = pay + 2 * _HOUR + _below(r, 70 * _HOUR)
    delivered = shipped + _DAY + _below(r, 4 * _DAY) if completed else None
    signed = delivered + _below(r, 3 * _HOUR) if delivered and r.random() < 0.9 else None
    row = {"id": sink.added + 1, "order_id": order_id, "carrier": carrier}
    row["waybill_no"] = f"{prefix}{10 + _below(r, 90)}{order_id:010d}"
    row["shipped_at"] = _local_text(shipped)
    row["delivered_at"] = None if delivered is None else _local_text(delivered)
    if zero:  # the legacy shop wrote MySQL's zero date when the carrier sent no delivery time
        row["delivered_at"] = ZERO_DATETIME
    row["signed_at"] = None if signed is None else _local_text(signed)
    sink.add(row)


def _write_b_orders(plan: _Plan, sinks: dict[str, _Sink], tally: Counter) -> None:
    roles, n, n_customers = plan.roles["sales_orders"], plan.n["sales_orders"], plan.n["customers"]
    for i in range(n):
        r = Random(f"{plan.seed}:legacy_b.sales_orders:{i}")
        role, _ = roles.role(i)
        t = _slot_time(i, n, r)
        if role == "orphan":
            customer = n_customers + 1 + _below(r, n_customers)
        else:
            customer = _created_before(t, n_customers, r)
        so_number = f"SO-{i + 1:06d}"
        lines = _order_lines(r, plan.usd_cents)
        row = {"so_number": so_number, "customer_id": customer, "currency": "USD"}
        row["amount_cents"] = sum(q * price for _, q, price in lines)
        row["state"] = _weighted(r, ls.B_STATES, _STATUS_CUM)
        row["created_epoch"] = _B_BASE_EPOCH + t
        sinks["sales_orders"].add(row)
        for k, (sku, q, price) in enumerate(lines):
            qty = -q if role == "negative_qty" and k == 0 else q
            line = {"id": sinks["sales_order_lines"].added + 1, "so_number": so_number, "sku": sku}
            sinks["sales_order_lines"].add(line | {"qty": qty, "unit_price_cents": price})
        tally[(role, "sales_order_lines")] += len(lines)


def _write_activity(plan: _Plan, sinks: dict[str, _Sink]) -> None:
    """Carts, the inventory log and the behaviour log; their ids grow with time."""
    n_users = plan.n["users"]
    n = plan.n["carts"]
    for j in range(n):
        r = Random(f"{plan.seed}:legacy_a.carts:{j}")
        t = _slot_time(j, n, r)
        row = {"id": j + 1, "user_id": _created_before(t, n_users, r), "sku": plan.sku(r)}
        sinks["carts"].add(row | {"quantity": 1 + _below(r, 3), "added_at": _local_text(t)})
    n = plan.n["inventory_log"]
    for j in range(n):
        r = Random(f"{plan.seed}:legacy_a.inventory_log:{j}")
        t = _slot_time(j, n, r)
        reason, sign = _pick(r, ls.INVENTORY_REASONS)
        if sign == 0:
            change = _below(r, 21) - 10
        else:
            change = 10 + _below(r, 490) if sign > 0 else -1 - _below(r, 20)
        row = {"id": j + 1, "sku": plan.sku(r), "change_qty": change, "reason": reason}
        sinks["inventory_log"].add(row | {"logged_at": _local_text(t)})
    n = plan.n["user_events"]
    for j in range(n):
        r = Random(f"{plan.seed}:legacy_a.user_events:{j}")
        t = _slot_time(j, n, r)
        row = {"id": j + 1, "user_id": _created_before(t, n_users, r)}
        row["event_type"] = _weighted(r, ls.EVENT_TYPES, _EVENT_CUM)
        sinks["user_events"].add(row | {"sku": plan.sku(r), "occurred_at": _local_text(t)})


def _write_customers(plan: _Plan, sinks: dict[str, _Sink], tally: Counter) -> None:
    for system, table in _CUSTOMER_TABLES:
        for i in range(plan.n[table]):
            row, truth, duplicate, kind = _customer(plan, system, table, i)
            sinks[table].add(row)
            if not duplicate:
                sinks["people"].add(truth)
            source = {"person_id": truth["person_id"], "source_system": system}
            sinks["person_sources"].add(source | {"source_key": str(i + 1)})
            tally[("name_kind", table, kind)] += 1
            tally[("untrimmed_email", table)] += row["email"] != row["email"].strip()


def _write_products(plan: _Plan, sink: _Sink, tally: Counter) -> None:
    for j in range(plan.n["products"]):
        p = _product(plan.seed, j)
        sink.add(p | {"price": _money(p["price"]), "market_price": _money(p["market_price"])})
        tally[("is_active", p["is_active"])] += 1


class _Sink:
    """One table's buffer; each full chunk is one executemany in a transaction of its own."""

    def __init__(
        self,
        engine: sa.Engine | None,
        table: sa.Table,
        chunk_size: int,
        progress: Callable[[str, int], None] | None,
    ) -> None:
        self.engine = engine
        self.table = table
        self.chunk_size = chunk_size
        self.progress = progress
        self.rows: list[dict[str, Any]] = []
        self.added = self.written = 0

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.added += 1
        if len(self.rows) >= self.chunk_size:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        if self.engine is not None:  # no engine: the truth was not asked for
            with self.engine.begin() as conn:
                conn.execute(self.table.insert(), self.rows)
            self.written += len(self.rows)
            if self.progress is not None:
                self.progress(self.table.name, self.written)
        self.rows = []


# --- summary ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSummary:
    """What ``build_demo_sources`` wrote: rows per system and table, and the seeded defects."""

    seed: int
    orders: int
    row_counts: dict[str, dict[str, int]]
    seeded_defects: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe copy: dicts with str keys, lists, strs and ints."""
        return {
            "seed": self.seed,
            "orders": self.orders,
            "row_counts": {system: dict(t) for system, t in self.row_counts.items()},
            "seeded_defects": _json_safe(self.seeded_defects),
        }

    def render(self) -> str:
        """A short text table of the row counts and the main defect counts."""
        d = self.seeded_defects
        lines = [f"Demo sources: seed {self.seed}, {self.orders:,} orders"]
        for system, tables in self.row_counts.items():
            lines += [f"  {f'{system}.{table}':<37}{n:>12,}" for table, n in tables.items()]
        total = sum(n for tables in self.row_counts.values() for n in tables.values())
        lines += [f"  {'total':<37}{total:>12,}", "Seeded defects:"]
        dup = d["duplicates"]
        lines.append(
            f"  duplicate persons: {dup['persons_in_two_systems']:,} in two systems, "
            f"{dup['persons_in_three_systems']:,} in three, "
            f"{dup['within_legacy_a_duplicate_accounts']:,} with two legacy_a accounts "
            f"({dup['duplicate_records']:,} duplicate records)"
        )
        for key in ("invalid_emails", "invalid_phones", "orphans", "negative_quantities"):
            counts = ", ".join(f"{where} {n:,}" for where, n in d[key].items())
            lines.append(f"  {key.replace('_', ' ')}: {counts}")
        nulls = ", ".join(f"{where} {v['orders']:,}" for where, v in d["missing_required"].items())
        lines.append(f"  missing required: {nulls}")
        for column, formats in d["date_formats"].items():
            shares = ", ".join(f"{fmt} {n:,}" for fmt, n in formats.items())
            lines.append(f"  date formats of {column}: {shares}")
        codes = d["unknown_status_codes"]["legacy_a.orders.status"]
        lines.append(
            "  unknown status codes: " + ", ".join(f"{c} ({n:,})" for c, n in codes.items())
        )
        zero = ", ".join(f"{where} {n:,}" for where, n in d["zero_dates"].items())
        lines.append(f"  zero dates: {zero}")
        return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _seeded_defects(plan: _Plan, tally: Counter) -> dict[str, Any]:
    users, b, crm = (plan.roles[table].counts for _, table in _CUSTOMER_TABLES)
    orders, sales = plan.roles["orders"].counts, plan.roles["sales_orders"].counts
    pairs = {"legacy_a+legacy_b": users["ab"], "legacy_a+crm": users["ac"], "legacy_b+crm": b["bc"]}
    duplicate_records = 2 * users["shared3"] + sum(pairs.values()) + users["pair_2"]
    records = sum(plan.n[table] for _, table in _CUSTOMER_TABLES)

    def formats(counts: dict[str, int], rows: int) -> dict[str, int]:
        out = {MAJOR_DATE_FORMAT: rows - sum(counts[role] for role in _FORMAT_ROLES)}
        return out | {fmt: counts[role] for role, fmt in _FORMAT_ROLES.items()}

    def dependents(role: str) -> dict[str, int]:
        out = {"orders": orders[role], "order_items": tally[(role, "order_items")]}
        return out | {"logistics": tally[(role, "logistics")]}

    def kinds(table: str) -> dict[str, int]:
        return {kind: tally[("name_kind", table, kind)] for kind in NAME_KINDS}

    yuan = {"currency": "CNY", "unit": "yuan", "type": "decimal(12,2)"}
    cents = {"currency": "USD", "unit": "cents", "type": "integer"}
    order_rows = plan.n["orders"] - orders["null_order_time"]
    # Copied through _json_safe so that the fragments used twice above do not alias each other.
    return _json_safe(
        {
            "duplicates": {
                "match_key": "lower(trim(email))",
                "source_customer_records": records,
                "distinct_persons": records - duplicate_records,
                "persons_in_two_systems": sum(pairs.values()),
                "persons_in_two_systems_by_pair": pairs,
                "persons_in_three_systems": users["shared3"],
                "within_legacy_a_duplicate_accounts": users["pair_2"],
                "duplicate_records": duplicate_records,
            },
            "invalid_emails": {
                "legacy_a.users.email": users["bad_email"],
                "legacy_b.customers.email": b["bad_email"],
                "crm.old_crm_customers.email": crm["bad_email"],
            },
            # Only on duplicates, whose emails are valid once trimmed: validate after strip().
            "untrimmed_emails": {
                f"{system}.{table}.email": tally[("untrimmed_email", table)]
                for system, table in _CUSTOMER_TABLES
            },
            "invalid_phones": {
                "legacy_a.users.phone": users["bad_phone"],
                "legacy_b.customers.mobile": b["bad_phone"],
                "crm.old_crm_customers.phone": crm["bad_phone"],
            },
            "date_formats": {
                "legacy_a.users.created_at": formats(users, plan.n["users"]),
                "legacy_a.orders.order_time": formats(orders, order_rows),
            },
            "amount_units": {
                "legacy_a.orders.amount": yuan,
                "legacy_a.order_items.unit_price": yuan,
                "legacy_a.products.price": yuan,
                "legacy_a.products.market_price": yuan,
                "legacy_b.sales_orders.amount_cents": cents,
                "legacy_b.sales_order_lines.unit_price_cents": cents,
            },
            "orphans": {
                "legacy_a.orders": orders["orphan"],
                "legacy_a.order_items": tally[("orphan", "order_items")],
                "legacy_a.logistics": tally[("orphan", "logistics")],
                "legacy_b.sales_orders": sales["orphan"],
                "legacy_b.sales_order_lines": tally[("orphan", "sales_order_lines")],
            },
            "negative_quantities": {
                "legacy_a.order_items": orders["negative_qty"],
                "legacy_b.sales_order_lines": sales["negative_qty"],
            },
            "missing_required": {
                "legacy_a.orders.amount": dependents("null_amount"),
                "legacy_a.orders.order_time": dependents("null_order_time"),
            },
            "name_kinds": {
                "legacy_a.users.full_name": kinds("users"),
                "crm.old_crm_customers.name": kinds("old_crm_customers"),
            },
            "unknown_status_codes": {
                "legacy_a.orders.status": {str(UNKNOWN_STATUS): orders["unknown_status"]},
            },
            "zero_dates": {"legacy_a.logistics.delivered_at": orders["zero_delivery"]},
            # not a defect: the TINYINT(1) flag's values, for checking what loads as booleans
            "flags": {
                "legacy_a.products.is_active": {"1": tally[("is_active", 1)]}
                | {"0": tally[("is_active", 0)]}
            },
            "status_vocabularies": {
                "legacy_a.orders.status": {str(c): name for c, name in ls.A_STATUS_NAMES.items()},
                "legacy_b.sales_orders.state": list(ls.B_STATES),
            },
            "time_zones": {
                "legacy_a": "Asia/Shanghai (local wall-clock text, no offset)",
                "legacy_b.sales_orders.created_epoch": "UTC (epoch seconds)",
                "legacy_b.customers.registered": "America/New_York (date only, MM/DD/YYYY)",
            },
            "currencies": {"legacy_a": "CNY", "legacy_b": "USD"},
        }
    )


# --- entry point --------------------------------------------------------------------------------


def _check_arguments(engines: Mapping[str, Any], orders: Any, seed: Any, chunk_size: Any) -> None:
    expected = [system for system, _ in _CUSTOMER_TABLES]
    if set(engines) != set(expected):
        raise RunbookError(
            f"demo sources need engines for exactly {', '.join(expected)}; got {sorted(engines)}",
            hint="pass one engine per source system (they may be the same engine)",
        )
    for name, value, low in (("orders", orders, MIN_ORDERS), ("chunk_size", chunk_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise RunbookError(f"demo data: {name} must be an integer >= {low}; got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise RunbookError(f"demo data: seed must be an integer; got {seed!r}")


def build_demo_sources(
    engines: Mapping[str, sa.Engine],
    *,
    orders: int,
    seed: int,
    truth_engine: sa.Engine | None = None,
    chunk_size: int = 10_000,
    progress: Callable[[str, int], None] | None = None,
) -> DemoSummary:
    """Drop, recreate and fill the three legacy sources; the same seed gives the same rows.

    Args:
        engines: one engine per source system, keyed ``legacy_a``, ``legacy_b`` and ``crm``
            (they may be the same engine: no table name is shared).
        orders: orders over both shops (70% legacy A, 30% legacy B); every table scales with it.
        seed: any integer; with ``orders`` it fixes every row, on every machine.
        truth_engine: where to write the ground truth (``people``, ``person_sources``), for tests.
        chunk_size: rows per insert and per transaction; memory grows with it, not with ``orders``.
        progress: called as ``progress(table_name, rows_written_so_far)`` after each chunk.

    Returns:
        The row count of every table and the exact count of every seeded defect.
    """
    _check_arguments(engines, orders, seed, chunk_size)
    plan = _Plan.create(orders, seed)
    targets = [(engines[system], metadata) for system, metadata in ls.METADATA_BY_SYSTEM.items()]
    if truth_engine is not None:
        targets.append((truth_engine, TRUTH_METADATA))
    for engine, metadata in targets:
        metadata.drop_all(engine)
        metadata.create_all(engine)
    sinks = {
        table.name: _Sink(engines[system], table, chunk_size, progress)
        for system, tables in _TABLES.items()
        for table in tables
    }
    for table in (ls.TRUTH_PEOPLE, ls.TRUTH_PERSON_SOURCES):
        sinks[table.name] = _Sink(truth_engine, table, chunk_size, progress)
    tally: Counter = Counter()
    _write_customers(plan, sinks, tally)
    _write_products(plan, sinks["products"], tally)
    _write_a_orders(plan, sinks, tally)
    _write_b_orders(plan, sinks, tally)
    _write_activity(plan, sinks)
    for sink in sinks.values():
        sink.flush()
    row_counts = {
        system: {table.name: sinks[table.name].written for table in tables}
        for system, tables in _TABLES.items()
    }
    return DemoSummary(seed, orders, row_counts, _seeded_defects(plan, tally))
