"""The HR + sales scenario's builders prove themselves: what they report is in the database.

Planted in ``store`` at seed 11, scale 1 (the counts do not grow with the scale): 1 employee
whose manager does not exist, 2 with a salary of 0 or below, 1 customer whose support rep does
not exist, 1 with an invalid email (its 1 invoice and 2 lines cascade), 1 category whose parent
does not exist, 1 product with a negative price, 3 invoices whose total is not the sum of their
lines, 2 without lines, 3 lines of missing invoices, 1 negative quantity. The counts asserted
here are derived again from the built database: planted defects by SQL, the expected outcome by
an independent pass of the spec's rules (``derive_outcome``), the checks by exact arithmetic.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from runbook_lib.errors import TransformError
from runbook_lib.transforms import (
    money,
    non_negative,
    normalize_email,
    parse_datetime,
    phone_e164,
    required,
    strip,
    to_decimal,
)

from .legacy import INVOICE_DATE_FORMATS, LEGACY_METADATA, build_legacy
from .target import TRIGGER, create_target, typed_tables

HERE = Path(__file__).resolve().parent
SPEC_PATH = HERE / "spec.yaml"
SPEC = yaml.safe_load(SPEC_PATH.read_text())
DIALECTS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=DIALECTS)
def database_url(request, tmp_path) -> sa.URL:
    """An empty database of each dialect: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return sa.engine.make_url(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.fixture
def legacy(database_url):
    """(engine, build result) of the legacy store at seed 11, scale 1."""
    result = build_legacy(database_url)
    engine = sa.create_engine(database_url)
    try:
        yield engine, result
    finally:
        engine.dispose()


@pytest.fixture
def target(database_url):
    """(engine, typed tables) of an empty new schema."""
    create_target(database_url)
    engine = sa.create_engine(database_url)
    try:
        yield engine, typed_tables(engine)
    finally:
        engine.dispose()


# --- reading the legacy back ---------------------------------------------------------------


def read_tables(engine: sa.Engine) -> dict[str, dict[int, dict]]:
    """Every legacy row by table and key; NUMERIC read as text (SQLite holds floats) then Decimal."""
    data = {}
    with engine.connect() as connection:
        for table in LEGACY_METADATA.sorted_tables:
            numeric = {c.name for c in table.columns if isinstance(c.type, sa.Numeric)}
            columns = [
                sa.cast(c, sa.String).label(c.name) if c.name in numeric else c
                for c in table.columns
            ]
            key = next(iter(table.primary_key.columns)).name
            rows = {}
            for row in connection.execute(sa.select(*columns)).mappings():
                row = dict(row)
                for name in numeric:
                    row[name] = None if row[name] is None else Decimal(row[name])
                rows[row[key]] = row
            data[table.name] = rows
    return data


def count(engine: sa.Engine, query: sa.Select) -> int:
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()


def orphans(child: sa.Table, column: str, parent: sa.Table, key: str) -> sa.Select:
    """Rows of ``child`` whose non-null ``column`` names no row of ``parent``."""
    found = sa.select(1).where(parent.c[key] == child.c[column]).correlate(child)
    return (
        sa.select(sa.func.count())
        .select_from(child)
        .where(child.c[column].is_not(None), ~found.exists())
    )


# --- the spec's rules, applied independently of the toolkit's loader --------------------------

HIRE = {"formats": ["%Y-%m-%d"], "tz": "America/Edmonton"}
INVOICED = {"formats": list(INVOICE_DATE_FORMATS), "tz": "America/Edmonton"}
# table → (the values its columns' transforms see, each a callable that raises TransformError)
TRANSFORMS = {
    "employee": lambda r: (
        required(strip(r["FirstName"])),
        required(strip(r["LastName"])),
        normalize_email(r["Email"]),
        parse_datetime(required(r["HireDate"]), **HIRE),
        to_decimal(required(r["Salary"]), scale=2),
    ),
    "customer": lambda r: (
        required(strip(r["FirstName"])),
        required(strip(r["LastName"])),
        normalize_email(r["Email"]),
    ),
    "category": lambda r: (required(strip(r["Name"])),),
    "product": lambda r: (
        required(strip(r["Name"])),
        money(required(r["UnitPrice"]), unit="major"),
    ),
    "invoice": lambda r: (
        parse_datetime(required(r["InvoiceDate"]), **INVOICED),
        money(required(r["Total"]), unit="major"),
    ),
    "invoice_line": lambda r: (
        money(required(r["UnitPrice"]), unit="major"),
        non_negative(required(r["Quantity"])),
    ),
}
# table → [(target column, source column, parent source table)], in the spec's column order
REFERENCES = {
    "employee": [("manager_id", "ReportsTo", "employee")],
    "customer": [("support_rep_id", "SupportRepId", "employee")],
    "category": [("parent_id", "ParentId", "category")],
    "product": [("category_id", "CategoryId", "category")],
    "invoice": [("customer_id", "CustomerId", "customer")],
    "invoice_line": [
        ("invoice_id", "InvoiceId", "invoice"),
        ("product_id", "ProductId", "product"),
    ],
}
# what the target's CHECKs refuse, on the values the mapping gives
REFUSED = {
    "employee": lambda r: Decimal(r["Salary"]) <= 0,
    "product": lambda r: r["UnitPrice"] < 0,
    "invoice_line": lambda r: r["Quantity"] <= 0,
}


def derive_outcome(data: dict[str, dict[int, dict]]) -> dict[str, dict[int, str]]:
    """Quarantine rule per key: a transform's rule, else an orphan, else the target's CHECK.

    A reference is an orphan when its parent row does not load, for whatever reason (cascades
    included); a NULL reference is no reference. Repeated until no more rows fall out.
    """
    failed: dict[str, dict[int, str]] = {table: {} for table in TRANSFORMS}
    for table, transform in TRANSFORMS.items():
        for key, row in data[table].items():
            try:
                transform(row)
            except TransformError as exc:
                failed[table][key] = exc.rule
    loaded = {table: set(data[table]) - set(failed[table]) for table in TRANSFORMS}
    while True:
        rules = {table: dict(failed[table]) for table in TRANSFORMS}
        for table, rows in data.items():
            for key, row in rows.items():
                if key in rules[table]:
                    continue
                for name, column, parent in REFERENCES[table]:
                    if row[column] is not None and row[column] not in loaded[parent]:
                        rules[table][key] = f"orphan_{name}"
                        break
                else:
                    if table in REFUSED and REFUSED[table](row):
                        rules[table][key] = "target_constraint"
        now = {table: set(data[table]) - set(rules[table]) for table in TRANSFORMS}
        if now == loaded:
            return rules
        loaded = now


def check_violations(invoices: dict[int, dict], lines: dict[int, dict]) -> tuple[list, list]:
    """(sum_equals, has_children) violating invoice keys; a parent without lines sums to 0."""
    sums: dict[int, Decimal] = {}
    for line in lines.values():
        amount = line["UnitPrice"] * line["Quantity"]
        sums[line["InvoiceId"]] = sums.get(line["InvoiceId"], Decimal(0)) + amount
    total_differs = sorted(k for k, i in invoices.items() if i["Total"] != sums.get(k, Decimal(0)))
    childless = sorted(k for k in invoices if k not in sums)
    return total_differs, childless


# --- the legacy ----------------------------------------------------------------------------


def test_planted_defects_are_in_the_database_in_their_exact_numbers(legacy):
    engine, result = legacy
    t = LEGACY_METADATA.tables
    employee, customer, category = t["employee"], t["customer"], t["category"]
    product, invoice, line = t["product"], t["invoice"], t["invoice_line"]
    manager = employee.alias("manager")
    parent = category.alias("parent")
    assert count(engine, orphans(employee, "ReportsTo", manager, "EmployeeId")) == 1
    assert count(engine, orphans(customer, "SupportRepId", employee, "EmployeeId")) == 1
    assert count(engine, orphans(category, "ParentId", parent, "CategoryId")) == 1
    assert count(engine, orphans(line, "InvoiceId", invoice, "InvoiceId")) == 3
    assert count(engine, orphans(invoice, "CustomerId", customer, "CustomerId")) == 0
    assert count(engine, orphans(product, "CategoryId", category, "CategoryId")) == 0
    assert count(engine, orphans(line, "ProductId", product, "ProductId")) == 0
    salary = sa.cast(employee.c.Salary, sa.Numeric(10, 2))
    assert count(engine, sa.select(sa.func.count()).where(salary <= 0)) == 2
    assert count(engine, sa.select(sa.func.count()).where(product.c.UnitPrice < 0)) == 1
    assert count(engine, sa.select(sa.func.count()).where(line.c.Quantity < 0)) == 1
    has_lines = sa.select(1).where(line.c.InvoiceId == invoice.c.InvoiceId).exists()
    assert count(engine, sa.select(sa.func.count()).select_from(invoice).where(~has_lines)) == 2
    # the traps: rows that look odd but must load
    assert count(engine, sa.select(sa.func.count()).where(employee.c.ReportsTo.is_(None))) == 1
    exists = sa.select(1).where(manager.c.EmployeeId == employee.c.ReportsTo).exists()
    later = (employee.c.ReportsTo > employee.c.EmployeeId) & exists
    assert count(engine, sa.select(sa.func.count()).select_from(employee).where(later)) == 2
    exists = sa.select(1).where(parent.c.CategoryId == category.c.ParentId).exists()
    later = (category.c.ParentId > category.c.CategoryId) & exists
    assert count(engine, sa.select(sa.func.count()).select_from(category).where(later)) == 2
    null_rep = sa.select(sa.func.count()).where(customer.c.SupportRepId.is_(None))
    assert count(engine, null_rep) == result["traps"]["customer_null_support_rep"]["count"] > 0
    shared = sa.select(sa.func.count()).where(
        customer.c.CustomerId.in_(sa.select(employee.c.EmployeeId))
    )
    assert count(engine, shared) == result["traps"]["keys_shared_by_employee_and_customer"]
    assert result["traps"]["keys_shared_by_employee_and_customer"] >= 3


def test_expected_outcome_follows_from_the_database_by_the_specs_rules(legacy):
    engine, result = legacy
    data = read_tables(engine)
    rules = derive_outcome(data)
    for table, outcome in result["tables"].items():
        assert outcome["rows"] == len(data[table]), table
        assert outcome["quarantined"] == dict(Counter(rules[table].values())), table
        assert outcome["loaded"] == len(data[table]) - len(rules[table]), table
    assert rules == planted_rules(result)
    assert result["tables"] == {
        "employee": expected("people", "employee:", 21, orphan_manager_id=1, target_constraint=2),
        "customer": expected("people", "customer:", 50, orphan_support_rep_id=1, invalid_email=1),
        "category": expected("categories", "", 24, orphan_parent_id=1),
        "product": expected("products", "", 41, target_constraint=1),
        "invoice": expected("invoices", "", 125, orphan_customer_id=1),
        "invoice_line": expected(
            "invoice_lines", "", 363, orphan_invoice_id=5, negative_quantity=1
        ),
    }


def planted_rules(result: dict) -> dict[str, dict[int, str]]:
    """Quarantine rule per key, as the build result's defects list them."""
    rules: dict[str, dict[int, str]] = {table: {} for table in TRANSFORMS}
    for defect in result["defects"].values():
        if defect["rule"]:
            rules[defect["table"]].update(dict.fromkeys(defect["keys"], defect["rule"]))
    return rules


def expected(target: str, prefix: str, rows: int, **quarantined: int) -> dict:
    return {
        "target": target,
        "key_prefix": prefix,
        "rows": rows,
        "loaded": rows - sum(quarantined.values()),
        "merged": 0,
        "filtered": {},
        "quarantined": dict(sorted(quarantined.items())),
    }


def test_check_violations_follow_from_the_database_by_exact_sums(legacy):
    engine, result = legacy
    data = read_tables(engine)
    checks = result["checks"]
    total_differs, childless = check_violations(data["invoice"], data["invoice_line"])
    assert total_differs == checks["invoice_total_matches_lines"]["source"]["keys"]
    assert childless == checks["invoice_has_lines"]["source"]["keys"]
    assert len(total_differs) == 5 and len(childless) == 2
    rules = derive_outcome(data)  # the target after a full load: the rows that load
    invoices = {k: r for k, r in data["invoice"].items() if k not in rules["invoice"]}
    lines = {k: r for k, r in data["invoice_line"].items() if k not in rules["invoice_line"]}
    total_differs, childless = check_violations(invoices, lines)
    assert total_differs == checks["invoice_total_matches_lines"]["target"]["keys"]
    assert childless == checks["invoice_has_lines"]["target"]["keys"]
    assert len(total_differs) == 6 and len(childless) == 2


def test_every_value_passes_its_transform_but_the_planted_ones(legacy):
    engine, result = legacy
    data = read_tables(engine)
    bad_emails = []
    for table in ("employee", "customer"):
        for key, row in data[table].items():
            try:
                normalize_email(row["Email"])
            except TransformError as exc:
                assert exc.rule == "invalid_email"
                bad_emails.append((table, key))
    assert bad_emails == [
        ("customer", k) for k in result["defects"]["customer_invalid_email"]["keys"]
    ]
    phones = [r[c] for r in data["customer"].values() for c in ("Phone", "Fax") if r[c]]
    assert phones and all(phone_e164(p, region="US").startswith("+") for p in phones)
    shapes = Counter()
    for row in data["invoice"].values():
        assert parse_datetime(row["InvoiceDate"], **INVOICED).tzinfo is not None
        shapes["/" in row["InvoiceDate"]] += 1
    formats = result["traps"]["invoice_date_formats"]
    assert shapes == {
        False: formats[INVOICE_DATE_FORMATS[0]],
        True: formats[INVOICE_DATE_FORMATS[1]],
    }
    assert all(formats.values())


def test_same_seed_same_database_and_other_seed_other_database(tmp_path):
    first = build_legacy(f"sqlite:///{tmp_path / 'a.db'}")
    again = build_legacy(f"sqlite:///{tmp_path / 'b.db'}")
    other = build_legacy(f"sqlite:///{tmp_path / 'c.db'}", seed=12)
    rows = {
        name: read_tables(sa.create_engine(f"sqlite:///{tmp_path / name}"))
        for name in ("a.db", "b.db", "c.db")
    }
    assert first == again and rows["a.db"] == rows["b.db"]
    assert rows["a.db"] != rows["c.db"]
    assert {t: o["quarantined"] for t, o in other["tables"].items()} == {
        t: o["quarantined"] for t, o in first["tables"].items()
    }


def test_expected_outcome_is_written_beside_a_sqlite_file(tmp_path):
    result = build_legacy(f"sqlite:///{tmp_path / 'work' / 'store.db'}")
    assert json.loads((tmp_path / "work" / "store.expected.json").read_text()) == result


def test_a_larger_scale_grows_the_rows_not_the_defects(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    result = build_legacy(url, scale=3)
    data = read_tables(sa.create_engine(url))
    assert len(data["customer"]) == 150 and len(data["invoice"]) == 375
    assert derive_outcome(data) == planted_rules(result)
    assert sum(len(d["keys"]) for d in result["defects"].values()) == 19


@pytest.mark.postgres
def test_postgresql_and_sqlite_hold_the_same_rows(postgres_url, tmp_path):
    sqlite_url = f"sqlite:///{tmp_path / 'store.db'}"
    assert build_legacy(postgres_url) == build_legacy(sqlite_url)
    engine = sa.create_engine(postgres_url)
    try:
        assert read_tables(engine) == read_tables(sa.create_engine(sqlite_url))
        columns = sa.inspect(engine).get_columns("employee")
        assert [c["name"] for c in columns][:5] == [
            "EmployeeId",
            "LastName",
            "FirstName",
            "Title",
            "ReportsTo",
        ]
    finally:
        engine.dispose()


# --- the target ----------------------------------------------------------------------------


def insert(connection: sa.Connection, table: sa.Table, **values) -> int:
    """Insert one row and return its id, assigned by the database."""
    key = next(iter(table.primary_key.columns))
    return connection.execute(table.insert().values(**values).returning(key)).scalar_one()


def source(key: str) -> dict:
    return {"source_system": "store", "source_key": key}


def a_sale(connection: sa.Connection, tables: dict[str, sa.Table]) -> dict[str, int]:
    """One employee, one customer, a category, a product and an invoice: the ids."""
    people = tables["people"]
    employee = insert(
        connection,
        people,
        kind="employee",
        first_name="A",
        last_name="B",
        salary=Decimal("50000"),
        **source("employee:3"),
    )
    customer = insert(
        connection,
        people,
        kind="customer",
        first_name="C",
        last_name="D",
        support_rep_id=employee,
        **source("customer:3"),
    )
    category = insert(connection, tables["categories"], name="Music", **source("1"))
    product = insert(
        connection,
        tables["products"],
        name="LP",
        category_id=category,
        unit_price=Decimal("9.99"),
        **source("1"),
    )
    invoice = insert(
        connection, tables["invoices"], customer_id=customer, total=Decimal("9.99"),
        invoiced_at=sa.func.current_timestamp(), **source("1"),
    )  # fmt: skip
    return {"employee": employee, "customer": customer, "product": product, "invoice": invoice}


PERSON = {"kind": "employee", "first_name": "E", "last_name": "F"}


@pytest.mark.parametrize(
    ("table", "bad", "good"),
    [
        ("products", {"unit_price": Decimal("-5.00")}, {"unit_price": Decimal("0.00")}),
        ("people", {**PERSON, "salary": Decimal("0.00")}, {**PERSON, "salary": Decimal("0.01")}),
        ("people", {**PERSON, "salary": Decimal("-4200")}, {**PERSON, "salary": None}),
        ("people", {**PERSON, "kind": "vendor"}, {**PERSON, "kind": "customer"}),
        ("invoice_lines", {"quantity": 0}, {"quantity": 1}),
        ("invoice_lines", {"quantity": -1}, {"quantity": 2}),
    ],
    ids=["negative_price", "zero_salary", "negative_salary", "kind", "zero_qty", "negative_qty"],
)
def test_the_targets_checks_refuse_what_they_should(target, table, bad, good):
    engine, tables = target
    with engine.begin() as connection:
        ids = a_sale(connection, tables)
    rest = {
        "products": {"name": "credit", "category_id": 1},
        "invoice_lines": {
            "invoice_id": ids["invoice"],
            "product_id": ids["product"],
            "unit_price": Decimal("1.00"),
        },
    }.get(table, {})
    with pytest.raises(sa.exc.IntegrityError, match="(?i)check"):
        with engine.begin() as connection:
            insert(connection, tables[table], **rest, **bad, **source("refused"))
    with engine.begin() as connection:
        accepted = insert(connection, tables[table], **rest, **good, **source("accepted"))
    with engine.connect() as connection:  # money reads back as exact Decimals on both dialects
        price = connection.execute(sa.select(tables["products"].c.unit_price).limit(1)).scalar()
    assert accepted > 0 and price == Decimal("9.99")


def test_the_database_numbers_every_table(target):
    engine, tables = target
    with engine.begin() as connection:
        first = a_sale(connection, tables)
        line = insert(
            connection,
            tables["invoice_lines"],
            invoice_id=first["invoice"],
            product_id=first["product"],
            unit_price=Decimal("9.99"),
            quantity=1,
            **source("1"),
        )
    assert first == {"employee": 1, "customer": 2, "product": 1, "invoice": 1} and line == 1
    with engine.begin() as connection:  # a second sale continues each sequence
        people = tables["people"]
        assert (
            insert(
                connection,
                people,
                kind="customer",
                first_name="G",
                last_name="H",
                **source("customer:4"),
            )
            == 3
        )
        assert (
            insert(
                connection,
                tables["categories"],
                category_id=50,
                name="Set by the loader",
                **source("2"),
            )
            == 50
        )


@pytest.mark.postgres
def test_postgresql_declares_each_kind_of_identity(postgres_url):
    create_target(postgres_url)
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            declared = dict(
                connection.execute(
                    sa.text(
                        "SELECT table_name, coalesce(identity_generation, column_default) "
                        "FROM information_schema.columns "
                        "WHERE table_schema = 'public' AND ordinal_position = 1"
                    )
                ).all()
            )
        assert declared == {
            "people": "ALWAYS",
            "invoices": "ALWAYS",
            "categories": "BY DEFAULT",
            "products": "nextval('products_product_id_seq'::regclass)",
            "invoice_lines": "nextval('invoice_lines_line_id_seq'::regclass)",
        }
        tables = typed_tables(engine)
        with pytest.raises(sa.exc.DatabaseError, match="non-DEFAULT value"):
            with engine.begin() as connection:
                insert(
                    connection,
                    tables["people"],
                    person_id=7,
                    kind="customer",
                    first_name="I",
                    last_name="J",
                    **source("customer:7"),
                )
        with engine.begin() as connection:  # what a loader that keeps its own ids has to say
            connection.execute(
                sa.text(
                    "INSERT INTO people (person_id, kind, first_name, last_name, source_system, source_key) "
                    "OVERRIDING SYSTEM VALUE VALUES (7, 'customer', 'I', 'J', 'store', 'customer:7')"
                )
            )
    finally:
        engine.dispose()


def test_sqlite_never_reuses_an_invoice_id(tmp_path):
    url = f"sqlite:///{tmp_path / 'target.db'}"
    create_target(url)
    engine = sa.create_engine(url)
    tables = typed_tables(engine)
    with engine.begin() as connection:
        ids = a_sale(connection, tables)
        invoice = insert(
            connection,
            tables["invoices"],
            customer_id=ids["customer"],
            total=Decimal("1"),
            invoiced_at=sa.func.current_timestamp(),
            **source("2"),
        )
        person = insert(
            connection,
            tables["people"],
            kind="customer",
            first_name="K",
            last_name="L",
            **source("customer:9"),
        )
        connection.execute(
            tables["invoices"].delete().where(tables["invoices"].c.invoice_id == invoice)
        )
        connection.execute(tables["people"].delete().where(tables["people"].c.person_id == person))
        again = insert(
            connection,
            tables["invoices"],
            customer_id=ids["customer"],
            total=Decimal("1"),
            invoiced_at=sa.func.current_timestamp(),
            **source("3"),
        )
        reused = insert(
            connection,
            tables["people"],
            kind="customer",
            first_name="K",
            last_name="L",
            **source("customer:9"),
        )
    assert (invoice, again) == (2, 3)  # AUTOINCREMENT
    assert reused == person  # a plain INTEGER PRIMARY KEY reuses the highest id


@pytest.mark.postgres
def test_postgresql_trigger_refuses_a_customer_as_someones_rep(postgres_url):
    create_target(postgres_url)
    engine = sa.create_engine(postgres_url)
    try:
        tables = typed_tables(engine)
        people = tables["people"]
        with engine.begin() as connection:
            ids = a_sale(connection, tables)
        for column in ("support_rep_id", "manager_id"):
            with pytest.raises(sa.exc.IntegrityError) as refused:
                with engine.begin() as connection:
                    insert(
                        connection,
                        people,
                        kind="customer",
                        first_name="M",
                        last_name="N",
                        **{column: ids["customer"]},
                        **source(f"customer:{column}"),
                    )
            assert refused.value.orig.sqlstate == "23514"
            assert refused.value.orig.diag.constraint_name == TRIGGER
        with pytest.raises(sa.exc.IntegrityError, match="must be an employee"):
            with engine.begin() as connection:
                connection.execute(
                    people.update()
                    .where(people.c.person_id == ids["employee"])
                    .values(manager_id=ids["customer"])
                )
        assert TRIGGER not in json.dumps(sa.inspect(engine).get_check_constraints("people"))
    finally:
        engine.dispose()


# --- the spec ------------------------------------------------------------------------------


def test_the_spec_names_the_new_features_in_their_syntax():
    people = SPEC["targets"]["people"]["sources"]
    assert people["store.employee"]["key_prefix"] == "employee:"
    assert people["store.customer"]["key_prefix"] == "customer:"
    to_employee = {"target": "people", "source": "store.employee"}
    assert people["store.employee"]["columns"]["manager_id"] == {
        "from": "ReportsTo",
        "references": to_employee,
    }
    assert people["store.customer"]["columns"]["support_rep_id"] == {
        "from": "SupportRepId",
        "references": to_employee,
    }
    assert people["store.employee"]["columns"]["kind"] == {"value": "employee"}
    category = SPEC["targets"]["categories"]["sources"]["store.category"]
    assert category["columns"]["parent_id"] == {"from": "ParentId", "references": "categories"}
    assert [(c["name"], c["kind"]) for c in SPEC["checks"]] == [
        ("invoice_total_matches_lines", "sum_equals"),
        ("invoice_has_lines", "has_children"),
    ]
    assert list(SPEC["targets"]) == [
        "people",
        "categories",
        "products",
        "invoices",
        "invoice_lines",
    ]


def test_the_spec_passes_the_spec_check_against_the_built_databases(tmp_path):
    from runbook_lib.mapping.check import check_spec
    from runbook_lib.mapping.model import load_spec

    build_legacy(f"sqlite:///{tmp_path / 'store.db'}")
    create_target(f"sqlite:///{tmp_path / 'target.db'}")
    source = sa.inspect(sa.create_engine(f"sqlite:///{tmp_path / 'store.db'}"))
    target = sa.inspect(sa.create_engine(f"sqlite:///{tmp_path / 'target.db'}"))
    check = check_spec(load_spec(SPEC_PATH), {"store": source}, target)
    assert check.problems == [], check.render()
    ignored = {
        c
        for m in (s for t in SPEC["targets"].values() for s in t["sources"].values())
        for c in m.get("ignore", {})
    }
    assert ignored == {"BirthDate", "Extension", "Address", "City", "Fax", "LegacyCode"}


def test_the_params_template_is_valid_params_of_environment_hr():
    from runbook_lib.config.params import RunbookParams

    params = yaml.safe_load((HERE / "params.yaml.template").read_text())
    assert params["env"] == "hr" and "demo" not in params
    assert params["mapping"] == "tests/scenarios/hr_sales/spec.yaml"
    assert set(params["sources"]) == set(SPEC["systems"].values()) == {"store"}
    assert all(c["url"].startswith("sqlite:///work/hr/") for c in params["sources"].values())
    assert RunbookParams.model_validate(params).env == "hr"
