"""The demo sources: deterministic, and every seeded defect count re-counted from the databases.

Fixture ``demo``: one build of 400 orders with seed 7 on SQLite files, ground truth included,
shared by the module. At that size every defect is planted at least twice (6 persons in two
systems, 2 in three, 2 second legacy A accounts; 2 orphans, 2 negative quantities, 2 NULL amounts
and 2 NULL order times per table, ...); tests read the exact counts from its ``DemoSummary``.

Each recount goes its own way (SQL anti-joins, regexes, email-validator, phonenumbers) and never
reuses the generator's code, so a summary that drifts from the data fails here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import phonenumbers
import pytest
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email

from runbook_demo.generate import (
    CRM_METADATA,
    LEGACY_A_METADATA,
    LEGACY_B_METADATA,
    TRUTH_METADATA,
    DemoSummary,
    build_demo_sources,
)
from runbook_lib.errors import RunbookError

ORDERS, SEED = 400, 7
SYSTEMS = ("legacy_a", "legacy_b", "crm")
METADATA = {"legacy_a": LEGACY_A_METADATA, "legacy_b": LEGACY_B_METADATA, "crm": CRM_METADATA}
# (system, table, key column, email column, phone column, phone region)
CUSTOMER_TABLES = (
    ("legacy_a", "users", "id", "email", "phone", "CN"),
    ("legacy_b", "customers", "customer_id", "email", "mobile", "US"),
    ("crm", "old_crm_customers", "id", "email", "phone", "CN"),
)
FORMAT_PATTERNS = {
    "%Y-%m-%d %H:%M:%S": r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}",
    "%Y/%m/%d %H:%M": r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}",
    "%Y%m%d%H%M%S": r"\d{14}",
    "%Y-%m-%dT%H:%M:%S": r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}",
}
CJK = re.compile(r"[\u4e00-\u9fff]")
COMPOUND = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐")


class Demo:
    """One build on SQLite files: its summary, engines and truth engine."""

    def __init__(self, folder: Path, *, seed: int = SEED, chunk_size: int = 10_000) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.engines = {s: sa.create_engine(f"sqlite:///{folder / s}.db") for s in SYSTEMS}
        self.truth = sa.create_engine(f"sqlite:///{folder / 'truth'}.db")
        self.summary = build_demo_sources(
            self.engines, orders=ORDERS, seed=seed, truth_engine=self.truth, chunk_size=chunk_size
        )

    def query(self, system: str, sql: str) -> list[tuple]:
        engine = self.truth if system == "truth" else self.engines[system]
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql))]

    def scalar(self, system: str, sql: str) -> int:
        return self.query(system, sql)[0][0]

    def tables(self) -> dict[str, list[tuple]]:
        """Every table of the build, rows ordered by primary key."""
        out = {}
        for system, metadata in [*METADATA.items(), ("truth", TRUTH_METADATA)]:
            engine = self.truth if system == "truth" else self.engines[system]
            with engine.connect() as conn:
                for table in metadata.sorted_tables:
                    query = sa.select(table).order_by(*table.primary_key.columns)
                    out[f"{system}.{table.name}"] = [tuple(r) for r in conn.execute(query)]
        return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Demo:
    return Demo(tmp_path_factory.mktemp("demo"))


def email_is_valid(text: str) -> bool:
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def phone_e164(text: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def customer_records(demo: Demo) -> list[dict]:
    records = []
    for system, table, key, email, phone, region in CUSTOMER_TABLES:
        rows = demo.query(system, f"SELECT {key}, {email}, {phone} FROM {table}")
        for k, e, p in rows:
            records.append(
                {"system": system, "table": table, "key": str(k), "email": e, "phone": p}
                | {"region": region}
            )
    return records


def name_kind(name: str) -> str:
    if CJK.search(name):
        return "chinese_compound_surname" if name[:2] in COMPOUND else "chinese_single_surname"
    if name != name.strip() or "  " in name:
        return "western_extra_spaces"
    parts = name.split(" ")
    if len(parts) == 1:
        return "western_single_name"
    return "western_two_part" if len(parts) == 2 else "western_three_plus_parts"


def parse_local(text: str) -> datetime:
    for fmt in FORMAT_PATTERNS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            pass
    raise AssertionError(f"no known format fits {text!r}")


# --- determinism and bookkeeping ----------------------------------------------------------------


def test_same_seed_builds_identical_tables(demo, tmp_path):
    again = Demo(tmp_path / "again", chunk_size=37)  # the chunk size must not matter either

    first, second = demo.tables(), again.tables()

    assert first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], name
    assert again.summary == demo.summary


# Changes only when the generator or its vocabulary changes on purpose; a change of Python version
# or machine must leave it alone (Random is seeded with str and only random() is called).
FINGERPRINT = "20a70a993365b9459e9cf465192e0877a51aa1eddc283957d3230e523963e065"


def test_a_build_matches_its_recorded_fingerprint(demo):
    digest = hashlib.sha256()
    tables = demo.tables()
    for name in sorted(tables):
        digest.update(name.encode())
        for row in tables[name]:
            digest.update(repr(row).encode())

    assert digest.hexdigest() == FINGERPRINT, "the demo data changed: if on purpose, update it"


def test_a_different_seed_builds_different_tables(demo, tmp_path):
    other = Demo(tmp_path / "other", seed=SEED + 1).tables()

    mine = demo.tables()

    for name in (
        "legacy_a.users",
        "legacy_a.orders",
        "legacy_b.customers",
        "crm.old_crm_customers",
    ):
        assert mine[name] != other[name], name


def test_row_counts_match_the_summary(demo):
    counted = {
        system: {
            t.name: demo.scalar(system, f"SELECT count(*) FROM {t.name}") for t in m.tables.values()
        }
        for system, m in METADATA.items()
    }

    assert counted == demo.summary.row_counts
    assert demo.summary.row_counts["legacy_a"]["orders"] == ORDERS * 7 // 10
    assert demo.summary.row_counts["legacy_b"]["sales_orders"] == ORDERS - ORDERS * 7 // 10


def test_progress_reports_each_chunk_with_growing_totals(tmp_path):
    engines = {s: sa.create_engine(f"sqlite:///{tmp_path / 'all'}.db") for s in SYSTEMS}
    calls: list[tuple[str, int]] = []

    summary = build_demo_sources(
        engines, orders=ORDERS, seed=SEED, chunk_size=50, progress=lambda t, n: calls.append((t, n))
    )

    by_table = defaultdict(list)
    for table, written in calls:
        by_table[table].append(written)
    expected = {t: n for tables in summary.row_counts.values() for t, n in tables.items()}
    assert set(by_table) == set(expected)  # the truth tables report only when written
    for table, totals in by_table.items():
        steps = [b - a for a, b in zip([0, *totals], totals, strict=False)]
        assert totals[-1] == expected[table]
        assert all(0 < step <= 50 for step in steps), table


def test_one_engine_can_hold_all_sources_and_a_rebuild_replaces_them(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'one'}.db")
    engines = dict.fromkeys(SYSTEMS, engine)

    build_demo_sources(engines, orders=ORDERS, seed=SEED)
    summary = build_demo_sources(engines, orders=ORDERS, seed=SEED)

    with engine.connect() as conn:
        for tables in summary.row_counts.values():
            for table, rows in tables.items():
                assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == rows


def test_summary_is_json_safe_and_renders_a_short_table(demo):
    as_dict = demo.summary.to_dict()

    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["seed"] == SEED and as_dict["orders"] == ORDERS
    text = demo.summary.render()
    assert "legacy_a.users" in text and "crm.old_crm_customers" in text
    assert len(text.splitlines()) < 40
    assert isinstance(demo.summary, DemoSummary)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"engines": "missing crm"}, "engines for exactly"),
        ({"orders": 10}, "orders must be an integer >= 100"),
        ({"chunk_size": 0}, "chunk_size must be an integer >= 1"),
        ({"seed": "7"}, "seed must be an integer"),
    ],
)
def test_bad_arguments_raise_a_runbook_error_before_touching_anything(tmp_path, change, message):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x'}.db")
    engines = dict.fromkeys(SYSTEMS, engine)
    if "engines" in change:
        del engines["crm"]
    kwargs = {"orders": ORDERS, "seed": SEED, "chunk_size": 100} | {
        k: v for k, v in change.items() if k != "engines"
    }

    with pytest.raises(RunbookError, match=message):
        build_demo_sources(engines, **kwargs)

    assert sa.inspect(engine).get_table_names() == []


# --- seeded defects, re-counted -----------------------------------------------------------------


def test_duplicate_persons_recount_by_trimmed_lower_case_email(demo):
    groups = defaultdict(list)
    for record in customer_records(demo):
        if email_is_valid(record["email"].strip()):
            groups[record["email"].strip().lower()].append(record)
    dup = demo.summary.seeded_defects["duplicates"]

    systems = {email: frozenset(r["system"] for r in group) for email, group in groups.items()}
    pairs = Counter("+".join(sorted(s, key=SYSTEMS.index)) for s in systems.values() if len(s) == 2)
    within_a = sum(
        max(0, [r["system"] for r in group].count("legacy_a") - 1) for group in groups.values()
    )

    assert dict(pairs) == dup["persons_in_two_systems_by_pair"]
    assert sum(pairs.values()) == dup["persons_in_two_systems"]
    assert sum(len(s) == 3 for s in systems.values()) == dup["persons_in_three_systems"]
    assert within_a == dup["within_legacy_a_duplicate_accounts"]
    assert sum(len(g) - 1 for g in groups.values()) == dup["duplicate_records"]
    for group in (g for g in groups.values() if len(g) > 1):
        # Duplicates never repeat an email verbatim; their phones are one number in other shapes.
        assert len({r["email"] for r in group}) == len(group)
        phones = {phone_e164(r["phone"], r["region"]) for r in group}
        assert len(phones) == 1 and None not in phones
        if len({r["system"] for r in group}) == len(group):
            assert len({r["phone"] for r in group}) == len(group)


def test_invalid_emails_are_exactly_the_seeded_ones_and_every_other_email_is_valid(demo):
    defects = demo.summary.seeded_defects
    invalid, untrimmed = Counter(), Counter()
    for record in customer_records(demo):
        where = f"{record['system']}.{record['table']}.email"
        invalid[where] += not email_is_valid(record["email"].strip())
        untrimmed[where] += record["email"] != record["email"].strip()

    assert dict(invalid) == defects["invalid_emails"]
    assert dict(untrimmed) == defects["untrimmed_emails"]
    assert all(n >= 2 for n in invalid.values())


def test_invalid_phones_are_exactly_the_seeded_ones_and_every_other_phone_is_valid(demo):
    invalid = Counter()
    for system, table, _key, _email, column, region in CUSTOMER_TABLES:
        for (phone,) in demo.query(system, f"SELECT {column} FROM {table}"):
            invalid[f"{system}.{table}.{column}"] += phone_e164(phone, region) is None

    assert dict(invalid) == demo.summary.seeded_defects["invalid_phones"]
    assert all(n >= 2 for n in invalid.values())


def test_invalid_contacts_belong_to_persons_recorded_once(demo):
    records = customer_records(demo)
    emails = Counter(r["email"].strip().lower() for r in records)
    phones = Counter(phone_e164(r["phone"], r["region"]) for r in records)

    for r in records:
        e164 = phone_e164(r["phone"], r["region"])
        if not email_is_valid(r["email"].strip()):
            assert e164 is not None and phones[e164] == 1
        if e164 is None:
            assert email_is_valid(r["email"]) and emails[r["email"].lower()] == 1


def test_date_formats_recount_by_regex(demo):
    counted = {}
    for column, table in (("created_at", "users"), ("order_time", "orders")):
        values = [v for (v,) in demo.query("legacy_a", f"SELECT {column} FROM {table}")]
        counts = Counter(
            fmt
            for v in values
            if v is not None
            for fmt, pattern in FORMAT_PATTERNS.items()
            if re.fullmatch(pattern, v)
        )
        assert sum(counts.values()) == sum(v is not None for v in values)  # one format each
        counted[f"legacy_a.{table}.{column}"] = dict(counts)

    assert counted == demo.summary.seeded_defects["date_formats"]


def test_orphans_recount_by_anti_join(demo):
    orphan_a = "SELECT o.id FROM orders o LEFT JOIN users u ON u.id = o.user_id WHERE u.id IS NULL"
    orphan_b = (
        "SELECT s.so_number FROM sales_orders s "
        "LEFT JOIN customers c ON c.customer_id = s.customer_id WHERE c.customer_id IS NULL"
    )

    counted = {
        "legacy_a.orders": demo.scalar("legacy_a", f"SELECT count(*) FROM ({orphan_a})"),
        "legacy_a.order_items": demo.scalar(
            "legacy_a", f"SELECT count(*) FROM order_items WHERE order_id IN ({orphan_a})"
        ),
        "legacy_a.logistics": demo.scalar(
            "legacy_a", f"SELECT count(*) FROM logistics WHERE order_id IN ({orphan_a})"
        ),
        "legacy_b.sales_orders": demo.scalar("legacy_b", f"SELECT count(*) FROM ({orphan_b})"),
        "legacy_b.sales_order_lines": demo.scalar(
            "legacy_b", f"SELECT count(*) FROM sales_order_lines WHERE so_number IN ({orphan_b})"
        ),
    }

    assert counted == demo.summary.seeded_defects["orphans"]
    assert counted["legacy_a.orders"] >= 2 and counted["legacy_b.sales_orders"] >= 2


def test_negative_quantities_recount_and_sit_only_on_otherwise_clean_orders(demo):
    negative_a = "SELECT order_id FROM order_items WHERE quantity < 0"
    negative_b = "SELECT so_number FROM sales_order_lines WHERE qty < 0"

    counted = {
        "legacy_a.order_items": demo.scalar("legacy_a", f"SELECT count(*) FROM ({negative_a})"),
        "legacy_b.sales_order_lines": demo.scalar(
            "legacy_b", f"SELECT count(*) FROM ({negative_b})"
        ),
    }

    assert counted == demo.summary.seeded_defects["negative_quantities"]
    clean_a = (
        "SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id "
        f"WHERE o.id IN ({negative_a}) AND o.amount IS NOT NULL AND o.order_time IS NOT NULL "
        "AND o.status BETWEEN 0 AND 4"
    )
    clean_b = (
        "SELECT count(*) FROM sales_orders s JOIN customers c ON c.customer_id = s.customer_id "
        f"WHERE s.so_number IN ({negative_b})"
    )
    assert demo.scalar("legacy_a", clean_a) == counted["legacy_a.order_items"]
    assert demo.scalar("legacy_b", clean_b) == counted["legacy_b.sales_order_lines"]


def test_missing_required_fields_and_their_dependents_recount(demo):
    counted = {}
    for column in ("amount", "order_time"):
        missing = f"SELECT id FROM orders WHERE {column} IS NULL"
        counted[f"legacy_a.orders.{column}"] = {
            "orders": demo.scalar("legacy_a", f"SELECT count(*) FROM ({missing})"),
            "order_items": demo.scalar(
                "legacy_a", f"SELECT count(*) FROM order_items WHERE order_id IN ({missing})"
            ),
            "logistics": demo.scalar(
                "legacy_a", f"SELECT count(*) FROM logistics WHERE order_id IN ({missing})"
            ),
        }

    assert counted == demo.summary.seeded_defects["missing_required"]
    overlap = (
        "SELECT count(*) FROM orders o LEFT JOIN users u ON u.id = o.user_id "
        "WHERE (o.amount IS NULL OR o.order_time IS NULL) AND (u.id IS NULL "
        "OR o.status NOT BETWEEN 0 AND 4 OR (o.amount IS NULL AND o.order_time IS NULL))"
    )
    assert demo.scalar("legacy_a", overlap) == 0


def test_name_kinds_recount_from_the_text(demo):
    counted = {}
    for system, table, column in (
        ("legacy_a", "users", "full_name"),
        ("crm", "old_crm_customers", "name"),
    ):
        kinds = Counter(
            name_kind(n) for (n,) in demo.query(system, f"SELECT {column} FROM {table}")
        )
        counted[f"{system}.{table}.{column}"] = dict(kinds)

    recorded = demo.summary.seeded_defects["name_kinds"]
    assert counted == {
        where: {k: n for k, n in kinds.items() if n} for where, kinds in recorded.items()
    }
    for kinds in recorded.values():
        assert all(n >= 2 for n in kinds.values())


def test_unknown_status_codes_recount(demo):
    rows = demo.query(
        "legacy_a",
        "SELECT status, count(*) FROM orders WHERE status NOT BETWEEN 0 AND 4 GROUP BY status",
    )

    recorded = demo.summary.seeded_defects["unknown_status_codes"]["legacy_a.orders.status"]
    assert {str(code): n for code, n in rows} == recorded
    states = demo.query("legacy_b", "SELECT DISTINCT state FROM sales_orders")
    assert {s for (s,) in states} <= set(
        demo.summary.seeded_defects["status_vocabularies"]["legacy_b.sales_orders.state"]
    )


def test_zero_dates_recount_and_sit_only_where_a_delivery_was_due(demo):
    rows = demo.query(
        "legacy_a",
        "SELECT l.delivered_at, l.signed_at, o.status FROM logistics l "
        "JOIN orders o ON o.id = l.order_id WHERE l.delivered_at LIKE '0000%'",
    )

    recorded = demo.summary.seeded_defects["zero_dates"]
    assert recorded == {"legacy_a.logistics.delivered_at": len(rows)}
    assert len(rows) >= 2
    assert {delivered for delivered, _, _ in rows} == {"0000-00-00 00:00:00"}
    assert {status for _, _, status in rows} == {3}  # completed orders: a delivery was due
    elsewhere = demo.scalar(
        "legacy_a",
        "SELECT count(*) FROM logistics WHERE shipped_at LIKE '0000%' OR signed_at LIKE '0000%'",
    )
    assert elsewhere == 0


def test_product_flags_are_zero_or_one_and_recount(demo):
    rows = demo.query("legacy_a", "SELECT is_active, count(*) FROM products GROUP BY is_active")

    assert {str(flag): n for flag, n in rows} == demo.summary.seeded_defects["flags"][
        "legacy_a.products.is_active"
    ]
    assert {flag for flag, _ in rows} == {0, 1}


def test_times_stay_within_2021_to_2024_and_never_precede_what_they_refer_to(demo):
    first, last = datetime(2021, 1, 1), datetime(2024, 12, 31, 23, 59, 59)
    created = {
        k: parse_local(v) for k, v in demo.query("legacy_a", "SELECT id, created_at FROM users")
    }
    orders = demo.query("legacy_a", "SELECT user_id, order_time, pay_time FROM orders")
    shipments = demo.query("legacy_a", "SELECT shipped_at, delivered_at, signed_at FROM logistics")
    events = demo.query("legacy_a", "SELECT user_id, occurred_at FROM user_events ORDER BY id")

    for user, ordered, paid in orders:
        if ordered is not None and user in created:
            assert created[user] <= parse_local(ordered)
        if ordered is not None and paid is not None:
            assert parse_local(ordered) <= parse_local(paid)
    zero = "0000-00-00 00:00:00"  # MySQL's "no date", recounted below
    times = [parse_local(t) for row in shipments for t in row if t not in (None, zero)]
    assert all(first <= t <= last for t in [*created.values(), *times])
    occurred = [parse_local(t) for _, t in events]
    assert occurred == sorted(occurred)  # the behaviour log is append-only
    assert all(created[user] <= t for (user, _), t in zip(events, occurred, strict=True))
    registered = demo.query("legacy_b", "SELECT registered FROM customers")
    dates = [datetime.strptime(r, "%m/%d/%Y") for (r,) in registered]
    assert all(first <= d <= last for d in dates)
    epochs = demo.query(
        "legacy_b", "SELECT min(created_epoch), max(created_epoch) FROM sales_orders"
    )[0]
    assert (
        datetime(2021, 1, 1).timestamp()
        <= epochs[0]
        <= epochs[1]
        <= datetime(2025, 1, 1).timestamp()
    )


# --- ground truth and text ----------------------------------------------------------------------


def test_truth_covers_every_source_customer_record_exactly_once(demo):
    sources = demo.query("truth", "SELECT source_system, source_key, person_id FROM person_sources")
    people = {row[0] for row in demo.query("truth", "SELECT person_id FROM people")}

    expected = {(r["system"], r["key"]) for r in customer_records(demo)}
    assert len(sources) == len(expected)
    assert {(s, k) for s, k, _ in sources} == expected
    assert {p for _, _, p in sources} == people
    dup = demo.summary.seeded_defects["duplicates"]
    assert len(people) == dup["distinct_persons"] == len(expected) - dup["duplicate_records"]


def test_truth_agrees_with_each_source_record(demo):
    truth = {
        (s, k): row
        for s, k, *row in demo.query(
            "truth",
            "SELECT s.source_system, s.source_key, p.first_name, p.last_name, p.email_normalized, "
            "p.phone_e164 FROM person_sources s JOIN people p ON p.person_id = s.person_id",
        )
    }
    names = {
        ("legacy_a", str(k)): n
        for k, n in demo.query("legacy_a", "SELECT id, full_name FROM users")
    }
    names |= {
        ("crm", str(k)): n for k, n in demo.query("crm", "SELECT id, name FROM old_crm_customers")
    }
    b_names = demo.query("legacy_b", "SELECT customer_id, first_name, last_name FROM customers")

    for record in customer_records(demo):
        first, last, email, phone = truth[(record["system"], record["key"])]
        raw = record["email"].strip()
        assert email == (raw.lower() if email_is_valid(raw) else None)
        assert phone == phone_e164(record["phone"], record["region"])
    for key, name in names.items():
        first, last = truth[key][:2]
        if CJK.search(name):
            assert name == f"{last}{first}"  # surname first, no space
        else:
            assert " ".join(name.split()) == (f"{first} {last}" if last else first)
    for key, first, last in b_names:
        assert truth[("legacy_b", str(key))][:2] == [first, last]


def test_chinese_names_round_trip_through_sqlite(demo):
    names = [n for (n,) in demo.query("legacy_a", "SELECT full_name FROM users") if CJK.search(n)]
    truth = {
        f"{last}{first}"
        for first, last in demo.query("truth", "SELECT first_name, last_name FROM people")
        if last and CJK.search(last)
    }

    assert len(names) > len(demo.query("legacy_a", "SELECT id FROM users")) // 2
    assert set(names) <= truth
    assert any(n[:2] in COMPOUND for n in names)
    assert {r[0] for r in demo.query("legacy_a", "SELECT DISTINCT reason FROM inventory_log")} <= {
        "采购入库",
        "销售出库",
        "退货入库",
        "盘点调整",
        "报损",
    }


@pytest.mark.mariadb
def test_legacy_a_builds_on_mariadb_with_chinese_text_intact(mariadb_url, tmp_path):
    engine = sa.create_engine(mariadb_url)
    engines = {s: sa.create_engine(f"sqlite:///{tmp_path / s}.db") for s in SYSTEMS}
    engines["legacy_a"] = engine
    reference = Demo(tmp_path / "sqlite")
    try:
        summary = build_demo_sources(engines, orders=ORDERS, seed=SEED, chunk_size=100)
        with engine.connect() as conn:
            users = [tuple(r) for r in conn.execute(sa.text("SELECT * FROM users ORDER BY id"))]
            orders = [tuple(r) for r in conn.execute(sa.text("SELECT * FROM orders ORDER BY id"))]
            flags = conn.execute(sa.text("SELECT sku, is_active FROM products ORDER BY sku")).all()
            flag_type = conn.execute(
                sa.text(
                    "SELECT column_type FROM information_schema.columns WHERE table_schema = "
                    "DATABASE() AND table_name = 'products' AND column_name = 'is_active'"
                )
            ).scalar_one()
    finally:
        engine.dispose()

    assert summary == reference.summary
    assert users == reference.query("legacy_a", "SELECT * FROM users ORDER BY id")
    assert [row[:2] + row[3:] for row in orders] == [
        row[:2] + row[3:] for row in reference.query("legacy_a", "SELECT * FROM orders ORDER BY id")
    ]
    # a legacy MySQL flag: BOOL is TINYINT(1), and PyMySQL hands its values over as 0/1 ints
    assert flag_type == "tinyint(1)"
    assert [tuple(r) for r in flags] == reference.query(
        "legacy_a", "SELECT sku, is_active FROM products ORDER BY sku"
    )
    assert {type(flag) for _, flag in flags} == {int}
