"""Survivorship per field: which system wins which field of a merged customer, and the crosswalk.

Fixture records (one person, email ``ada@example.com``), loaded in the default order
legacy_a → legacy_b → crm as the loader does:

* legacy_a:1 — first name "Ada" (split from one field), no phone;
* legacy_b:7 — first name "Adelaide" (its own field), phone +12025550143;
* crm:3 — first name "A.", phone +8613800000000.

Default order: legacy_a keeps its name, legacy_b only fills the phone, crm fills nothing. With
``first_name: [legacy_b, legacy_a, crm]`` legacy_b's name replaces legacy_a's, whether the
records arrive in one chunk or in separate ones (then the stored row and crosswalk are updated).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from runbook_demo.target_schema import create_target_schema
from runbook_lib.load.merge import merge_chunk
from runbook_lib.mapping.model import MergeSpec

ADA = [
    {
        "source_system": "legacy_a",
        "source_key": "1",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "phone": None,
    },
    {
        "source_system": "legacy_b",
        "source_key": "7",
        "first_name": "Adelaide",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "phone": "+12025550143",
    },
    {
        "source_system": "crm",
        "source_key": "3",
        "first_name": "A.",
        "last_name": None,
        "email": "ada@example.com",
        "phone": "+8613800000000",
    },
]
PIPELINE = SimpleNamespace(target_name="customers", target=SimpleNamespace(id_column="customer_id"))


@pytest.fixture
def target(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'target.db'}")
    create_target_schema(engine)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    return engine, metadata


def merge(target, records, override: dict | None = None, chunks: int = 1) -> tuple[dict, dict]:
    engine, metadata = target
    spec = MergeSpec(
        crosswalk="customer_xref",
        match_on=["email", "phone"],
        survivorship=["legacy_a", "legacy_b", "crm"],
        survivorship_by_field=override or {},
    )
    ids = iter(range(1, 100))
    size = -(-len(records) // chunks)
    for start in range(0, len(records), size):
        chunk = [({}, dict(r)) for r in records[start : start + size]]
        with engine.begin() as connection:
            merge_chunk(connection, PIPELINE, metadata, spec, chunk, lambda: next(ids))
    with engine.connect() as connection:
        customers = [
            dict(r) for r in connection.execute(sa.text("SELECT * FROM customers")).mappings()
        ]
        xref = {
            (r.source_system, r.source_key): (r.customer_id, r.match_rule, r.supplied_fields)
            for r in connection.execute(sa.text("SELECT * FROM customer_xref"))
        }
    return customers, xref


def test_default_order_keeps_the_first_systems_values_and_only_fills_gaps(target):
    customers, xref = merge(target, ADA)

    assert len(customers) == 1
    (ada,) = customers
    assert (ada["first_name"], ada["phone"], ada["source_system"]) == (
        "Ada",
        "+12025550143",
        "legacy_a",
    )
    assert xref == {
        ("legacy_a", "1"): (1, "new", "first_name,last_name,email"),
        ("legacy_b", "7"): (1, "match:email", "phone"),
        ("crm", "3"): (1, "match:email", None),
    }


@pytest.mark.parametrize("chunks", [1, 3], ids=["one-chunk", "chunk-per-record"])
def test_a_field_override_lets_a_later_system_win_that_field_only(target, chunks):
    override = {"first_name": ["legacy_b", "legacy_a", "crm"]}

    customers, xref = merge(target, ADA, override, chunks=chunks)

    (ada,) = customers
    assert ada["first_name"] == "Adelaide"  # legacy_b wins the name
    assert ada["last_name"] == "Lovelace"  # default order: legacy_a's
    assert ada["phone"] == "+12025550143"  # legacy_a had none: legacy_b fills it
    assert ada["source_system"] == "legacy_a"  # the survivor row stays legacy_a's record
    assert xref[("legacy_a", "1")] == (1, "new", "last_name,email")
    assert xref[("legacy_b", "7")] == (1, "match:email", "first_name,phone")
    assert xref[("crm", "3")] == (1, "match:email", None)


def test_an_override_naming_a_system_that_loads_last_still_wins(target):
    override = {"phone": ["crm", "legacy_b", "legacy_a"]}

    customers, xref = merge(target, ADA, override, chunks=3)

    assert customers[0]["phone"] == "+8613800000000"
    assert xref[("legacy_b", "7")][2] is None  # it lost the phone it had supplied
    assert xref[("crm", "3")][2] == "phone"


def test_within_one_system_the_earlier_record_wins(target):
    second = dict(ADA[0], source_key="2", first_name="Augusta", phone="+12025550100")

    customers, xref = merge(target, [ADA[0], second], {"first_name": ["legacy_a"]})

    assert customers[0]["first_name"] == "Ada"
    assert customers[0]["phone"] == "+12025550100"
    assert xref[("legacy_a", "2")] == (1, "match:email", "phone")


def test_records_of_different_people_stay_apart(target):
    other = dict(ADA[1], email="grace@example.com", phone="+12025550199", first_name="Grace")

    customers, xref = merge(target, [ADA[0], other], {"first_name": ["legacy_b", "legacy_a"]})

    assert sorted(c["first_name"] for c in customers) == ["Ada", "Grace"]
    assert {rule for _id, rule, _fields in xref.values()} == {"new"}


def test_merge_spec_order_for_a_field_lists_unnamed_systems_after_the_named_ones():
    spec = MergeSpec(
        crosswalk="x",
        match_on=["email"],
        survivorship=["legacy_a", "legacy_b", "crm"],
        survivorship_by_field={"first_name": ["crm"]},
    )

    assert spec.order_for("first_name") == ["crm", "legacy_a", "legacy_b"]
    assert spec.order_for("phone") == ["legacy_a", "legacy_b", "crm"]
    assert spec.rank("first_name", "legacy_b") == 2
    assert spec.rank("phone", "elsewhere") == 3
