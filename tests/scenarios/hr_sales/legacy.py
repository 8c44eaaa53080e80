"""The legacy ``store`` database of the HR + sales scenario, with defects planted in exact numbers.

One system holds everything a small music-and-instrument retailer ran on: its staff
(``employee``, a manager hierarchy through ``ReportsTo``), its customers (each with a support rep
who is an employee), a category tree, products, invoices and invoice lines. Column names are the
legacy application's own (``EmployeeId``, ``ReportsTo``, ``SupportRepId``): mixed case, so on
PostgreSQL they are quoted identifiers. The legacy declares primary keys but no foreign keys, which
is how its orphans came to be.

``build_legacy(url, seed=11, scale=1)`` creates the tables at any SQLAlchemy URL (a SQLite file or
a PostgreSQL database), fills them deterministically from ``seed`` (rows stream in batches, so
``scale=100`` stays flat in memory) and returns what it planted and what a migration through
``spec.yaml`` must end with, per source table: rows, loaded, and quarantined by rule. For a SQLite
file the same dict is written beside it as ``<name>.expected.json``.

Legacy types, on purpose: money (``UnitPrice``, ``Total``) is ``NUMERIC(10,2)``, which SQLite
keeps as a binary float (as a real legacy SQLite file does; sums in SQL need rounding to cents),
``Salary`` is numeric *text*, dates are text (``HireDate`` ``YYYY-MM-DD``; ``InvoiceDate`` in two
formats, see ``INVOICE_DATE_FORMATS``).
"""

from __future__ import annotations

import argparse
import json
import unicodedata
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from random import Random
from typing import Any

import sqlalchemy as sa

SYSTEM = "store"
BATCH_ROWS = 500
CENT = Decimal("0.01")

# The web shop wrote ISO text; the till software of the shop floor wrote US 12-hour text.
INVOICE_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%m/%d/%Y %I:%M %p")
POS_FORMAT_SHARE = 0.2

LEGACY_METADATA = sa.MetaData()

employee = sa.Table(
    "employee",
    LEGACY_METADATA,
    sa.Column("EmployeeId", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("LastName", sa.String(40), nullable=False),
    sa.Column("FirstName", sa.String(40), nullable=False),
    sa.Column("Title", sa.String(60)),
    sa.Column("ReportsTo", sa.Integer),  # → employee.EmployeeId; NULL for the general manager
    sa.Column("BirthDate", sa.String(10)),
    sa.Column("HireDate", sa.String(10)),  # 'YYYY-MM-DD'
    sa.Column("Email", sa.String(80)),
    sa.Column("Extension", sa.String(8)),
    sa.Column("Salary", sa.String(16)),  # numeric text: '52000', '52000.00'
)

customer = sa.Table(
    "customer",
    LEGACY_METADATA,
    sa.Column("CustomerId", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("FirstName", sa.String(40), nullable=False),
    sa.Column("LastName", sa.String(40), nullable=False),
    sa.Column("Company", sa.String(80)),
    sa.Column("Address", sa.String(70)),
    sa.Column("City", sa.String(40)),
    sa.Column("Country", sa.String(40)),
    sa.Column("Phone", sa.String(24)),
    sa.Column("Fax", sa.String(24)),
    sa.Column("Email", sa.String(80)),
    sa.Column("SupportRepId", sa.Integer),  # → employee.EmployeeId; NULL: no rep assigned
)

category = sa.Table(
    "category",
    LEGACY_METADATA,
    sa.Column("CategoryId", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("Name", sa.String(60), nullable=False),
    sa.Column("ParentId", sa.Integer),  # → category.CategoryId; NULL for a root
)

product = sa.Table(
    "product",
    LEGACY_METADATA,
    sa.Column("ProductId", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("Name", sa.String(120), nullable=False),
    sa.Column("CategoryId", sa.Integer),
    sa.Column("UnitPrice", sa.Numeric(10, 2)),
    sa.Column("LegacyCode", sa.String(12)),
)

invoice = sa.Table(
    "invoice",
    LEGACY_METADATA,
    sa.Column("InvoiceId", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("CustomerId", sa.Integer, nullable=False),
    sa.Column("InvoiceDate", sa.String(24), nullable=False),
    sa.Column("BillingCountry", sa.String(40)),
    sa.Column("Total", sa.Numeric(10, 2), nullable=False),
)

invoice_line = sa.Table(
    "invoice_line",
    LEGACY_METADATA,
    sa.Column("InvoiceLineId", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("InvoiceId", sa.Integer, nullable=False),
    sa.Column("ProductId", sa.Integer, nullable=False),
    sa.Column("UnitPrice", sa.Numeric(10, 2), nullable=False),
    sa.Column("Quantity", sa.Integer, nullable=False),
)

# Load order of the spec: which target each source table feeds, and its source_key prefix.
SOURCE_TABLES = {
    "employee": ("people", "employee:"),
    "customer": ("people", "customer:"),
    "category": ("categories", ""),
    "product": ("products", ""),
    "invoice": ("invoices", ""),
    "invoice_line": ("invoice_lines", ""),
}

# The category tree, fixed whatever the scale: (CategoryId, Name, ParentId). Three levels; two
# children were created before their parent (14 → 20, 22 → 23); 24's parent 99 was deleted.
CATEGORIES: tuple[tuple[int, str, int | None], ...] = (
    (1, "Music", None),
    (2, "Rock", 1),
    (3, "  Jazz", 1),
    (4, "Classical", 1),
    (5, "Instruments", None),
    (6, "Guitars", 5),
    (7, "Electric Guitars", 6),
    (8, "Acoustic Guitars", 6),
    (9, "Keyboards", 5),
    (10, "Books &  Scores", None),
    (11, "Sheet Music", 10),
    (12, "Biographies", 10),
    (13, "Accessories", None),
    (14, "Strings", 20),
    (15, "Cables", 13),
    (16, "Vinyl", 1),
    (17, "Blues", 1),
    (18, "Bebop", 3),
    (19, "Opera", 4),
    (20, "Guitar Accessories", 13),
    (21, "Picks", 20),
    (22, "Drum Kits", 23),
    (23, "Percussion", 5),
    (24, "Discontinued Lines", 99),
)
CATEGORY_FORWARD_PARENTS = (14, 22)
CATEGORY_ORPHAN = 24
CATEGORY_MISSING_PARENT = 99

FIRST_NAMES = (
    "Andrew", "Nancy", "Jane", "Margaret", "Steve", "Michael", "Robert", "Laura", "Luís",
    "Leonie", "François", "Bjørn", "František", "Helena", "Astrid", "Daan", "Kara", "Eduardo",
    "Alexandre", "Roberto", "Fernanda", "Mark", "Jennifer", "Frank", "Jack", "Michelle", "Tim",
    "Dan", "Kathy", "Heather", "John", "Emma", "Hugh", "Lucas", "Johannes", "Camille",
    "Dominique", "Marc", "Wyatt", "Isabelle", "Ladislav", "Hannah", "Niklas", "Joakim", "Aaron",
    "Ellie", "Madalena", "Puja", "Manoj", "Diego", "Mónica", "Enrique",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Edwards", "Peacock", "Park", "Johnson", "Mitchell", "King", "Callahan",
    "Gonçalves", "Köhler", "Tremblay", "Hansen", "Wichterlová", "Holý", "Gruber", "Zimmermann",
    "Peeters", "Nielsen", "Martins", "Rocha", "Almeida", "Ramos", "Philips", "Taylor", "Miller",
    "Chase", "Brooks", "Goyer", "Sullivan", "Murray", "Gordon", "Mercier", "Girard", "Bernard",
    "Schröder", "Schneider", "Fernandes", "Sampaio", "Srivastava", "Pareek", "Gutiérrez",
    "Muñoz", "Rojas", "Cunningham", "Stevens", "Smith",
)  # fmt: skip
COMPANIES = (
    "Embraer", "Telus", "Google Inc.", "Apple Inc.", "Microsoft Corporation", "Riotur",
    "JetBrains s.r.o.", "Rogers Canada", "Woodstock Discos", "Banco do Brasil S.A.",
)  # fmt: skip
EMAIL_DOMAINS = (
    "gmail.com", "yahoo.com", "hotmail.com", "apple.com", "outlook.com", "web.de",
    "uol.com.br", "orange.fr", "yahoo.co.in", "telus.net",
)  # fmt: skip
STAFF_DOMAIN = "larkspur-music.com"


def _phone_us(rng: Random) -> str:
    return f"+1 ({rng.choice([212, 415, 312, 617, 206, 702])}) 555-{rng.randrange(100, 200):04d}"


def _phone_ca(rng: Random) -> str:
    area = rng.choice([403, 604, 416, 514, 780])
    return f"+1 ({area}) {rng.randrange(200, 999)}-{rng.randrange(10000):04d}"


def _phone_br(rng: Random) -> str:
    area = rng.choice([11, 21, 12, 61])
    return f"+55 ({area}) 9{rng.randrange(6000, 9999)}-{rng.randrange(10000):04d}"


# Country → (a city, a phone in the legacy's international style). Every phone made here is a
# valid number for phone_e164 (test_build checks each one).
COUNTRIES = {
    "Canada": ("Calgary", _phone_ca),
    "USA": ("Chicago", _phone_us),
    "Brazil": ("São Paulo", _phone_br),
    "Germany": ("Stuttgart", lambda r: f"+49 151 {r.randrange(10000000, 99999999)}"),
    "France": ("Lyon", lambda r: f"+33 6 12 {r.randrange(10, 99)} {r.randrange(10, 99)} {r.randrange(10, 99)}"),
    "United Kingdom": ("London", lambda r: f"+44 7400 {r.randrange(100000, 999999)}"),
    "Portugal": ("Lisbon", lambda r: f"+351 91{r.randrange(10)} {r.randrange(100, 999)} {r.randrange(100, 999)}"),
    "India": ("Bangalore", lambda r: f"+91 8{r.randrange(1000, 9999)} {r.randrange(10000, 99999)}"),
    "Australia": ("Sydney", lambda r: f"+61 412 {r.randrange(100, 999)} {r.randrange(100, 999)}"),
    "Norway": ("Oslo", lambda r: f"+47 406 {r.randrange(10, 99)} {r.randrange(100, 999)}"),
}  # fmt: skip
PRICES = tuple(
    Decimal(p)
    for p in ("0.99", "1.99", "4.99", "9.99", "14.99", "24.99", "49.99", "129.00", "399.00")
)
# Invoices whose Total was edited after the fact, by how much it differs from its lines.
TOTAL_DELTAS = (Decimal("1.00"), Decimal("-0.99"), Decimal("0.01"))


def _slug(text: str) -> str:
    """ASCII letters of a name, lowercased: 'Luís' → 'luis', 'Bjørn' → 'bjrn'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in ascii_text.lower() if c.isalpha())


class _BatchWriter:
    """Rows buffered per table and inserted BATCH_ROWS at a time, in one transaction."""

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection
        self.buffers: dict[sa.Table, list[dict]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, table: sa.Table, row: dict) -> None:
        buffer = self.buffers[table]
        buffer.append(row)
        self.counts[table.name] += 1
        if len(buffer) >= BATCH_ROWS:
            self.flush(table)

    def flush(self, table: sa.Table) -> None:
        if self.buffers[table]:
            self.connection.execute(table.insert(), self.buffers[table])
            self.buffers[table] = []

    def flush_all(self) -> None:
        for table in list(self.buffers):
            self.flush(table)


def _engine(url: str | sa.URL) -> sa.Engine:
    url = sa.engine.make_url(url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    return sa.create_engine(url)


def build_legacy(url: str | sa.URL, *, seed: int = 11, scale: int = 1) -> dict[str, Any]:
    """Create and fill the legacy ``store`` database at ``url``; return what was planted.

    Existing tables of the same names are dropped first. The result (JSON-safe) has ``tables``
    (per source table: target, key prefix, rows, loaded, quarantined by rule), ``defects`` (each
    planted defect: table, keys, rule, count), ``checks`` (the spec's cross-table checks:
    violating invoice keys in the source and, after a full load, in the target) and ``traps``
    (rows that look odd but must load).
    """
    if scale < 1:
        raise ValueError(f"scale must be at least 1, not {scale}")
    rng = Random(seed)
    engine = _engine(url)
    try:
        LEGACY_METADATA.drop_all(engine)
        LEGACY_METADATA.create_all(engine)
        with engine.begin() as connection:
            writer = _BatchWriter(connection)
            staff = _write_employees(writer, rng, scale)
            customers = _write_customers(writer, rng, scale, staff)
            catalogue = _write_catalogue(writer, rng, scale)
            sales = _write_sales(writer, rng, scale, customers, catalogue)
            writer.flush_all()
        result = _expected(seed, scale, dict(writer.counts), staff, customers, catalogue, sales)
        database = engine.url.database
        if engine.dialect.name == "sqlite" and database not in (None, "", ":memory:"):
            beside = Path(database).with_suffix(".expected.json")
            beside.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        return result
    finally:
        engine.dispose()


def _write_employees(writer: _BatchWriter, rng: Random, scale: int) -> dict[str, Any]:
    """The hierarchy: general manager → 3 VPs → sales managers → agents, plus one late manager."""
    rows: list[dict] = []
    hired = date(2014, 3, 3)

    def add(title: str, reports_to: int | None, salary: int) -> dict:
        nonlocal hired
        hired += timedelta(days=rng.randrange(20, 70))
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        employee_id = len(rows) + 1
        row = {
            "EmployeeId": employee_id,
            "LastName": last,
            "FirstName": first,
            "Title": title,
            "ReportsTo": reports_to,
            "BirthDate": f"{rng.randrange(1960, 2000)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
            "HireDate": hired.isoformat(),
            "Email": f"{_slug(first)}.{_slug(last)}{employee_id}@{STAFF_DOMAIN}",
            "Extension": str(rng.randrange(100, 999)),
            "Salary": f"{salary}.00" if rng.random() < 0.7 else str(salary),
        }
        rows.append(row)
        return row

    general_manager = add("General Manager", None, 185000)
    vps = [
        add(title, general_manager["EmployeeId"], rng.randrange(120000, 150000, 500))
        for title in ("VP Sales", "VP Operations", "VP People")
    ]
    managers = [
        add("Sales Manager", vps[0]["EmployeeId"], rng.randrange(70000, 90000, 250))
        for _ in range(4 * scale)
    ]
    agents = [
        add(
            "Sales Support Agent",
            rng.choice(managers)["EmployeeId"],
            rng.randrange(42000, 66000, 250),
        )
        for _ in range(12 * scale)
    ]
    # Hired last, so with the highest id: two agents hired before them now report to them.
    regional = add("Regional Sales Manager", vps[0]["EmployeeId"], 92000)
    forward = rng.sample(agents, 2)
    for agent in forward:
        agent["ReportsTo"] = regional["EmployeeId"]
    # Three agents nobody reports to and no customer is served by (defects without a cascade).
    orphan, zero_salary, negative_salary = rng.sample([a for a in agents if a not in forward], 3)
    missing_manager = len(rows) + 40  # a manager deleted years ago
    orphan["ReportsTo"] = missing_manager
    zero_salary["Salary"] = "0.00"
    negative_salary["Salary"] = "-4200.00"
    defective = {orphan["EmployeeId"], zero_salary["EmployeeId"], negative_salary["EmployeeId"]}
    for row in rows:
        writer.add(employee, row)
    return {
        "rows": len(rows),
        "ids": [r["EmployeeId"] for r in rows],
        "reps": [a["EmployeeId"] for a in agents if a["EmployeeId"] not in defective],
        "general_manager": general_manager["EmployeeId"],
        "forward": sorted(a["EmployeeId"] for a in forward),
        "regional": regional["EmployeeId"],
        "orphan": orphan["EmployeeId"],
        "missing_manager": missing_manager,
        "bad_salary": sorted([zero_salary["EmployeeId"], negative_salary["EmployeeId"]]),
        "depth": 4,
    }


def _write_customers(
    writer: _BatchWriter, rng: Random, scale: int, staff: dict[str, Any]
) -> dict[str, Any]:
    count = 50 * scale
    orphan_rep, bad_email = rng.sample(range(1, count + 1), 2)
    missing_rep = staff["rows"] + 25  # an agent who left; their row was deleted
    countries: list[str] = []
    no_rep: list[int] = []
    for customer_id in range(1, count + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        country = rng.choice(list(COUNTRIES))
        city, phone = COUNTRIES[country]
        local = f"{_slug(first)}.{_slug(last)}" + (str(customer_id) if rng.random() < 0.5 else "")
        domain = rng.choice(EMAIL_DOMAINS)
        email = f"{local}@{domain}"
        if rng.random() < 0.1:  # typed by hand at the counter: mixed case, stray spaces (valid)
            email = f" {local.title()}@{domain.capitalize()} "
        if customer_id == bad_email:
            email = f"{local} at {domain}"
        rep = None if rng.random() < 0.1 else rng.choice(staff["reps"])
        if customer_id == orphan_rep:
            rep = missing_rep
        elif customer_id == bad_email and rep is None:  # one defect per row
            rep = staff["reps"][0]
        elif rep is None:
            no_rep.append(customer_id)
        writer.add(
            customer,
            {
                "CustomerId": customer_id,
                "FirstName": first,
                "LastName": last,
                "Company": rng.choice(COMPANIES) if rng.random() < 0.25 else None,
                "Address": f"{rng.randrange(1, 999)} {rng.choice(LAST_NAMES)} Street",
                "City": city,
                "Country": country,
                "Phone": phone(rng) if rng.random() < 0.9 else None,
                "Fax": phone(rng) if rng.random() < 0.15 else None,
                "Email": email,
                "SupportRepId": rep,
            },
        )
        countries.append(country)
    return {
        "rows": count,
        "countries": countries,  # index customer_id - 1
        "orphan_rep": orphan_rep,
        "missing_rep": missing_rep,
        "bad_email": bad_email,
        "no_rep": no_rep,
    }


def _write_catalogue(writer: _BatchWriter, rng: Random, scale: int) -> dict[str, Any]:
    for category_id, name, parent_id in CATEGORIES:
        writer.add(category, {"CategoryId": category_id, "Name": name, "ParentId": parent_id})
    count = 40 * scale + 1
    negative = rng.randrange(1, count + 1)
    usable = [c for c, _name, _parent in CATEGORIES if c != CATEGORY_ORPHAN]
    names = {c: " ".join(name.split()) for c, name, _parent in CATEGORIES}
    prices: dict[int, Decimal] = {}
    for product_id in range(1, count + 1):
        category_id = rng.choice(usable)
        price = rng.choice(PRICES)
        name = f"Larkspur {names[category_id]} No. {rng.randrange(100, 999)}"
        if product_id == negative:  # a credit note keyed in as a product
            price, name = Decimal("-5.00"), "Store credit adjustment"
        else:
            prices[product_id] = price
        writer.add(
            product,
            {
                "ProductId": product_id,
                "Name": name + ("  " if rng.random() < 0.05 else ""),
                "CategoryId": category_id,
                "UnitPrice": price,
                "LegacyCode": f"LK-{rng.randrange(100000):05d}",
            },
        )
    return {
        "categories": len(CATEGORIES),
        "rows": count,
        "negative_price": negative,
        "prices": prices,
        "sellable": sorted(prices),
    }


def _write_sales(
    writer: _BatchWriter,
    rng: Random,
    scale: int,
    customers: dict[str, Any],
    catalogue: dict[str, Any],
) -> dict[str, Any]:
    """Invoices in date order with their lines; defects at invoice positions drawn up front."""
    count = 125 * scale
    planted = rng.sample(range(count), 7)
    mismatched_at, no_lines_at = planted[0:3], planted[3:5]
    negative_at, cascade_at = planted[5], planted[6]
    orphan_lines_after = rng.sample(range(count), 2)
    special = {customers["orphan_rep"], customers["bad_email"]}
    ordinary = [c for c in range(1, customers["rows"] + 1) if c not in special]
    span_minutes = 4 * 365 * 24 * 60
    moment = datetime(2021, 1, 4, 9, 0, 0)
    sellable, prices = catalogue["sellable"], catalogue["prices"]
    formats = dict.fromkeys(INVOICE_DATE_FORMATS, 0)
    found: dict[str, Any] = {
        "mismatched": [],
        "no_lines": [],
        "negative_quantity_invoice": None,
        "negative_quantity_line": None,
        "cascade_invoice": None,
        "cascade_lines": [],
        "orphan_lines": [],
        "missing_invoices": [count + 101, count + 102],
    }
    line_id = 0

    def add_line(invoice_id: int, product_id: int, price: Decimal, quantity: int) -> int:
        nonlocal line_id
        line_id += 1
        writer.add(
            invoice_line,
            {
                "InvoiceLineId": line_id,
                "InvoiceId": invoice_id,
                "ProductId": product_id,
                "UnitPrice": price,
                "Quantity": quantity,
            },
        )
        return line_id

    for position in range(count):
        invoice_id = position + 1
        moment += timedelta(
            minutes=rng.randint(1, 2 * span_minutes // count), seconds=rng.randrange(60)
        )
        fmt = (
            INVOICE_DATE_FORMATS[1] if rng.random() < POS_FORMAT_SHARE else INVOICE_DATE_FORMATS[0]
        )
        formats[fmt] += 1
        customer_id = customers["bad_email"] if position == cascade_at else rng.choice(ordinary)
        n_lines = rng.choice([1, 2, 2, 3, 3, 4, 5])
        if position == negative_at:
            n_lines = max(n_lines, 3)
        elif position == cascade_at:
            n_lines = 2
        lines = []
        for _ in range(n_lines):
            product_id = rng.choice(sellable)
            price = prices[product_id]
            if rng.random() < 0.1:  # a discount at the till
                price = (price * Decimal("0.9")).quantize(CENT, rounding=ROUND_HALF_EVEN)
            lines.append([product_id, price, rng.choice([1, 1, 1, 2, 2, 3, 5])])
        if position == negative_at:
            lines[-1][2] = -1  # a returned item keyed in as a negative line
        total = sum((price * quantity for _p, price, quantity in lines), Decimal(0))
        if position in mismatched_at:
            total += TOTAL_DELTAS[mismatched_at.index(position)]
            found["mismatched"].append(invoice_id)
        writer.add(
            invoice,
            {
                "InvoiceId": invoice_id,
                "CustomerId": customer_id,
                "InvoiceDate": moment.strftime(fmt),
                "BillingCountry": customers["countries"][customer_id - 1],
                "Total": total.quantize(CENT),
            },
        )
        if position in no_lines_at:  # the lines were lost in a 2022 archive purge
            found["no_lines"].append(invoice_id)
        else:
            ids = [add_line(invoice_id, *line) for line in lines]
            if position == negative_at:
                found["negative_quantity_invoice"], found["negative_quantity_line"] = (
                    invoice_id,
                    ids[-1],
                )
            if position == cascade_at:
                found["cascade_invoice"], found["cascade_lines"] = invoice_id, ids
        for index, after in enumerate(orphan_lines_after):
            if position == after:  # lines of an invoice deleted by hand, left behind
                missing = found["missing_invoices"][index]
                for _ in range(2 - index):
                    product_id = rng.choice(sellable)
                    found["orphan_lines"].append(
                        add_line(missing, product_id, prices[product_id], 1)
                    )
    found["mismatched"].sort()
    found["no_lines"].sort()
    found["orphan_lines"].sort()
    found["rows"], found["lines"], found["formats"] = count, line_id, formats
    return found


def _outcome(table: str, rows: int, quarantined: dict[str, int]) -> dict[str, Any]:
    target, prefix = SOURCE_TABLES[table]
    return {
        "target": target,
        "key_prefix": prefix,
        "rows": rows,
        "loaded": rows - sum(quarantined.values()),
        "merged": 0,
        "filtered": {},
        "quarantined": dict(sorted(quarantined.items())),
    }


def _expected(
    seed: int,
    scale: int,
    counts: dict[str, int],
    staff: dict[str, Any],
    customers: dict[str, Any],
    catalogue: dict[str, Any],
    sales: dict[str, Any],
) -> dict[str, Any]:
    negative_invoice = sales["negative_quantity_invoice"]

    def defect(table: str, keys: list[int], rule: str | None, what: str) -> dict[str, Any]:
        return {
            "table": table,
            "keys": sorted(keys),
            "count": len(keys),
            "rule": rule,
            "what": what,
        }

    defects = {
        "employee_orphan_manager": defect(
            "employee", [staff["orphan"]], "orphan_manager_id",
            f"ReportsTo names employee {staff['missing_manager']}, which does not exist",
        ),
        "employee_salary_not_positive": defect(
            "employee", staff["bad_salary"], "target_constraint",
            "Salary '0.00' and '-4200.00': people's CHECK (salary > 0) refuses them",
        ),
        "customer_orphan_support_rep": defect(
            "customer", [customers["orphan_rep"]], "orphan_support_rep_id",
            f"SupportRepId names employee {customers['missing_rep']}, which does not exist",
        ),
        "customer_invalid_email": defect(
            "customer", [customers["bad_email"]], "invalid_email", "Email has no @-sign"
        ),
        "category_orphan_parent": defect(
            "category", [CATEGORY_ORPHAN], "orphan_parent_id",
            f"ParentId names category {CATEGORY_MISSING_PARENT}, which does not exist",
        ),
        "product_negative_price": defect(
            "product", [catalogue["negative_price"]], "target_constraint",
            "UnitPrice -5.00: no transform catches it; products' CHECK (unit_price >= 0) refuses it",
        ),
        "invoice_total_mismatch": defect(
            "invoice", sales["mismatched"], None,
            "Total differs from its lines by +1.00, -0.99 and +0.01; loads as it is, the check reports it",
        ),
        "invoice_without_lines": defect(
            "invoice", sales["no_lines"], None,
            "no invoice_line rows at all (Total is not 0); loads, the check reports it",
        ),
        "invoice_of_quarantined_customer": defect(
            "invoice", [sales["cascade_invoice"]], "orphan_customer_id",
            "cascade: its customer is quarantined (invalid_email), so it has no parent in people",
        ),
        "invoice_line_orphan_invoice": defect(
            "invoice_line", sales["orphan_lines"], "orphan_invoice_id",
            f"InvoiceId {sales['missing_invoices']} do not exist (2 lines and 1 line)",
        ),
        "invoice_line_of_quarantined_invoice": defect(
            "invoice_line", sales["cascade_lines"], "orphan_invoice_id",
            "cascade: the lines of the invoice of the quarantined customer",
        ),
        "invoice_line_negative_quantity": defect(
            "invoice_line", [sales["negative_quantity_line"]], "negative_quantity",
            f"Quantity -1 (a return) on invoice {negative_invoice}, whose Total includes it",
        ),
    }  # fmt: skip
    rows = {
        "employee": staff["rows"],
        "customer": customers["rows"],
        "category": catalogue["categories"],
        "product": catalogue["rows"],
        "invoice": sales["rows"],
        "invoice_line": sales["lines"],
    }
    tables = {}
    for name, written in rows.items():
        if counts.get(name, 0) != written:
            raise AssertionError(f"{name}: wrote {counts.get(name, 0)} rows, counted {written}")
        quarantined: dict[str, int] = defaultdict(int)
        for planted in defects.values():
            if planted["table"] == name and planted["rule"]:
                quarantined[planted["rule"]] += planted["count"]
        tables[name] = _outcome(name, written, quarantined)
    source_sum = sorted(sales["mismatched"] + sales["no_lines"])
    target_sum = sorted([*source_sum, negative_invoice])
    checks = {
        "semantics": "a parent without children sums to 0; keys are InvoiceId / invoices.source_key",
        "invoice_total_matches_lines": {
            "source": {"violations": len(source_sum), "keys": source_sum},
            "target": {
                "violations": len(target_sum),
                "keys": target_sum,
                "inherited": source_sum,
                "introduced": [negative_invoice],
                "why_introduced": "its negative line is quarantined, so its loaded lines no longer sum to its total",
            },
        },
        "invoice_has_lines": {
            "source": {"violations": len(sales["no_lines"]), "keys": sales["no_lines"]},
            "target": {"violations": len(sales["no_lines"]), "keys": sales["no_lines"]},
        },
    }
    people_loaded = tables["employee"]["loaded"] + tables["customer"]["loaded"]
    return {
        "system": SYSTEM,
        "seed": seed,
        "scale": scale,
        "tables": tables,
        "targets": {
            "people": people_loaded,
            "categories": tables["category"]["loaded"],
            "products": tables["product"]["loaded"],
            "invoices": tables["invoice"]["loaded"],
            "invoice_lines": tables["invoice_line"]["loaded"],
        },
        "defects": defects,
        "checks": checks,
        "traps": {
            "employee_null_manager": [staff["general_manager"]],
            "employee_manager_hired_later": {
                "keys": staff["forward"],
                "manager": staff["regional"],
                "what": "ReportsTo is a higher EmployeeId: a load in key order meets them before their manager",
            },
            "employee_hierarchy_levels": staff["depth"],
            "customer_null_support_rep": {"count": len(customers["no_rep"]), "keys": customers["no_rep"]},
            "category_roots": sorted(c for c, _n, parent in CATEGORIES if parent is None),
            "category_parent_created_later": list(CATEGORY_FORWARD_PARENTS),
            "keys_shared_by_employee_and_customer": min(staff["rows"], customers["rows"]),
            "invoice_date_formats": sales["formats"],
            "legacy_decimals_on_sqlite": "UnitPrice and Total are NUMERIC(10,2): binary floats in SQLite",
        },
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """``python tests/scenarios/hr_sales/legacy.py URL [--seed N] [--scale N]``: build and print."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument(
        "url", help="SQLAlchemy URL of the legacy database, e.g. sqlite:///work/hr/store.db"
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--scale", type=int, default=1)
    args = parser.parse_args(argv)
    result = build_legacy(args.url, seed=args.seed, scale=args.scale)
    print(json.dumps(result["tables"], indent=2))


if __name__ == "__main__":
    main()
