"""The demo's new platform: its target schema (DDL only).

The names here are the contract the demo's tests rely on (DESIGN.md). Its decimals and times use
the library's portable types (``runbook_lib.db.types``), as any user's target schema can.
"""

from __future__ import annotations

import sqlalchemy as sa

from runbook_lib.db.type_rules import MYSQL
from runbook_lib.db.types import ExactDecimal, UtcDateTime


def _source_columns() -> list[sa.Column]:
    """Where a row came from: every loaded row carries its source system and key."""
    return [
        sa.Column("source_system", sa.String(16), nullable=False),
        sa.Column("source_key", sa.String(64), nullable=False),
    ]


TARGET_METADATA = sa.MetaData()
_TABLE_OPTIONS = {"mysql_charset": MYSQL.charset, "mysql_engine": "InnoDB"}

customers = sa.Table(
    "customers",
    TARGET_METADATA,
    sa.Column("customer_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("first_name", sa.String(64)),
    sa.Column("last_name", sa.String(64)),
    sa.Column("email", sa.String(255), unique=True),
    sa.Column("phone", sa.String(32), index=True),  # a match key of the merge: looked up per chunk
    sa.Column("created_at", UtcDateTime()),
    *_source_columns(),
    **_TABLE_OPTIONS,
)

customer_xref = sa.Table(
    "customer_xref",
    TARGET_METADATA,
    sa.Column("source_system", sa.String(16), primary_key=True),
    sa.Column("source_key", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.customer_id"), nullable=False),
    sa.Column("match_rule", sa.String(32), nullable=False),
    # survivorship: the customers fields whose value came from this source record
    sa.Column("supplied_fields", sa.String(255)),
    **_TABLE_OPTIONS,
)

products = sa.Table(
    "products",
    TARGET_METADATA,
    sa.Column("sku", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("category", sa.String(64)),
    sa.Column("brand", sa.String(64)),
    sa.Column("stock", sa.Integer),
    sa.Column("price", ExactDecimal(14, 2)),
    sa.Column("market_price", ExactDecimal(14, 2)),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("is_active", sa.Boolean),  # BOOLEAN; MySQL's BOOL is TINYINT(1) (type_rules)
    *_source_columns(),
    sa.UniqueConstraint("source_system", "source_key", name="uq_products_source"),
    **_TABLE_OPTIONS,
)

orders = sa.Table(
    "orders",
    TARGET_METADATA,
    sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("order_no", sa.String(32), nullable=False, unique=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.customer_id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", ExactDecimal(14, 2), nullable=False),
    sa.Column("ordered_at", UtcDateTime(), nullable=False),
    sa.Column("paid_at", UtcDateTime()),
    *_source_columns(),
    sa.UniqueConstraint("source_system", "source_key", name="uq_orders_source"),
    **_TABLE_OPTIONS,
)

order_items = sa.Table(
    "order_items",
    TARGET_METADATA,
    sa.Column("order_item_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.order_id"), nullable=False),
    sa.Column("sku", sa.String(32), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", ExactDecimal(14, 2), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    # the unit price in the reporting currency, by the rate table of the mapping spec
    sa.Column("unit_price_cny", ExactDecimal(14, 2)),
    *_source_columns(),
    sa.UniqueConstraint("source_system", "source_key", name="uq_order_items_source"),
    **_TABLE_OPTIONS,
)

carts = sa.Table(
    "carts",
    TARGET_METADATA,
    sa.Column("cart_item_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.customer_id"), nullable=False),
    sa.Column("sku", sa.String(32), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("added_at", UtcDateTime(), nullable=False),
    *_source_columns(),
    sa.UniqueConstraint("source_system", "source_key", name="uq_carts_source"),
    **_TABLE_OPTIONS,
)

shipments = sa.Table(
    "shipments",
    TARGET_METADATA,
    sa.Column("shipment_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.order_id"), nullable=False),
    sa.Column("carrier", sa.String(64), nullable=False),
    sa.Column("waybill_no", sa.String(64), nullable=False),
    sa.Column("shipped_at", UtcDateTime(), nullable=False),
    sa.Column("delivered_at", UtcDateTime()),
    sa.Column("signed_at", UtcDateTime()),
    *_source_columns(),
    sa.UniqueConstraint("source_system", "source_key", name="uq_shipments_source"),
    **_TABLE_OPTIONS,
)

user_events = sa.Table(
    "user_events",
    TARGET_METADATA,
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.customer_id"), nullable=False),
    sa.Column("event_type", sa.String(32), nullable=False),
    sa.Column("sku", sa.String(32)),
    sa.Column("occurred_at", UtcDateTime(), nullable=False),
    *_source_columns(),
    sa.UniqueConstraint("source_system", "source_key", name="uq_user_events_source"),
    **_TABLE_OPTIONS,
)


def create_target_schema(engine: sa.Engine, *, drop_first: bool = False) -> None:
    """Create the demo target's tables (the new platform would normally own this DDL)."""
    if drop_first:
        TARGET_METADATA.drop_all(engine)
    TARGET_METADATA.create_all(engine)
