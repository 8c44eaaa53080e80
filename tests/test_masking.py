"""Tests for masking personal data and classifying the demo's columns.

Classification is checked against the demo's real column names (``legacy_schema``), so a renamed
column or a changed rule shows up here rather than as unmasked evidence.
"""

from __future__ import annotations

import pytest

from runbook_demo.legacy_schema import (
    A_ORDER_ITEMS,
    A_ORDERS,
    A_PRODUCTS,
    A_USERS,
    B_CUSTOMERS,
    B_SALES_ORDER_LINES,
    B_SALES_ORDERS,
    CRM_CUSTOMERS,
)
from runbook_lib.privacy.classification import classify_column, classify_columns
from runbook_lib.privacy.masking import mask_email, mask_name, mask_phone, mask_row, mask_value

# --------------------------------------------------------------------------------------------
# Emails


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("li.wei@example.com", "l***@example.com"),
        ("  Mary.Smith@Shop.Example.org ", "M***@Shop.Example.org"),
        ("@example.com", "***@example.com"),
        ("not-an-email", "n***"),
    ],
)
def test_email_keeps_only_the_first_letter_and_the_domain(value, masked):
    assert mask_email(value) == masked


@pytest.mark.parametrize("value", [None, ""])
def test_email_none_and_empty_pass_through(value):
    assert mask_email(value) is value


# --------------------------------------------------------------------------------------------
# Phones


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("+8613812345678", "***78"),
        ("138-1234-5691", "***91"),
        ("(212) 555-0142", "***42"),
        ("021-6234 5678 (office)", "***78"),
        (13812345603, "***03"),
        ("7", "***"),
        ("n/a", "***"),
    ],
)
def test_phone_keeps_only_the_last_two_digits(value, masked):
    assert mask_phone(value) == masked


def test_phone_none_passes_through():
    assert mask_phone(None) is None


# --------------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("Mary Ann Smith", "M. A. S."),
        ("  James   Brown ", "J. B."),
        ("Cher", "C."),
    ],
)
def test_western_name_becomes_initials(value, masked):
    assert mask_name(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("王伟", "王*"),
        ("欧阳娜娜", "欧*"),
        (" 张 三丰 ", "张*"),
    ],
)
def test_chinese_name_keeps_only_the_first_surname_character(value, masked):
    assert mask_name(value) == masked


@pytest.mark.parametrize("value", [None, "", "   "])
def test_name_none_and_blank_pass_through(value):
    assert mask_name(value) is value


# --------------------------------------------------------------------------------------------
# mask_value and mask_row


def test_credential_is_redacted_whatever_its_value():
    assert mask_value("credential", "$2b$12$abcdefghijklmnopqrstuv") == "[redacted]"
    assert mask_value("credential", "") == "[redacted]"
    assert mask_value("credential", None) is None


def test_address_keeps_only_its_first_character():
    assert mask_value("address", "上海市浦东新区人民路88号") == "上***"


@pytest.mark.parametrize("classification", ["other", "amount", "no-such-class"])
def test_unmasked_classifications_pass_values_through(classification):
    assert mask_value(classification, "12.50") == "12.50"


def test_mask_row_masks_a_legacy_user_by_its_classification():
    row = {
        "id": 17,
        "username": "liwei88",
        "password_hash": "$2b$12$abcdefghijklmnopqrstuv",
        "full_name": "李伟",
        "email": "li.wei@example.com",
        "phone": "13812345678",
        "address": "北京市朝阳区建设路5号",
        "created_at": "2023-04-01 10:00:00",
    }

    masked = mask_row(row, classify_columns("users", list(row)))

    assert masked == {
        "id": 17,
        "username": "l***",
        "password_hash": "[redacted]",
        "full_name": "李*",
        "email": "l***@example.com",
        "phone": "***78",
        "address": "北***",
        "created_at": "2023-04-01 10:00:00",
    }


def test_mask_row_leaves_unclassified_columns_alone():
    assert mask_row({"email": "a@b.c", "note": "x"}, {"email": "email"}) == {
        "email": "a***@b.c",
        "note": "x",
    }


# --------------------------------------------------------------------------------------------
# Classification of the demo's columns


def classes(table) -> dict[str, tuple[str, str]]:
    return {column.name: classify_column(table.name, column.name) for column in table.columns}


def test_legacy_a_users_columns_are_classified():
    assert classes(A_USERS) == {
        "id": ("other", "other"),
        "username": ("username", "personal"),
        "password_hash": ("credential", "credential"),
        "full_name": ("name", "personal"),
        "email": ("email", "personal"),
        "phone": ("phone", "personal"),
        "address": ("address", "personal"),
        "created_at": ("other", "other"),
    }


def test_legacy_b_customers_columns_are_classified():
    assert classes(B_CUSTOMERS) == {
        "customer_id": ("other", "other"),
        "first_name": ("name", "personal"),
        "last_name": ("name", "personal"),
        "email": ("email", "personal"),
        "mobile": ("phone", "personal"),
        "registered": ("other", "other"),
    }


def test_name_in_a_person_table_is_personal_but_a_product_name_is_not():
    assert classify_column(CRM_CUSTOMERS.name, "name") == ("name", "personal")
    assert classify_column(A_PRODUCTS.name, "name") == ("other", "other")


@pytest.mark.parametrize(
    ("table", "column"),
    [
        (A_ORDERS, "amount"),
        (B_SALES_ORDERS, "amount_cents"),
        (A_PRODUCTS, "price"),
        (A_PRODUCTS, "market_price"),
        (A_ORDER_ITEMS, "unit_price"),
        (B_SALES_ORDER_LINES, "unit_price_cents"),
    ],
)
def test_money_columns_are_financial(table, column):
    assert column in table.columns
    assert classify_column(table.name, column) == ("amount", "financial")


def test_products_columns_hold_no_personal_data():
    categories = {column: category for column, (_, category) in classes(A_PRODUCTS).items()}

    assert categories == {
        "sku": "other",
        "name": "other",
        "category": "other",
        "brand": "other",
        "stock": "other",
        "price": "financial",
        "market_price": "financial",
        "is_active": "other",
    }


def test_classification_ignores_the_case_of_the_column_name():
    assert classify_column("Users", "EMail") == ("email", "personal")
    assert classify_column("CUSTOMERS", "Full_Name") == ("name", "personal")


def test_classify_columns_returns_the_classification_of_each_column():
    assert classify_columns("old_crm_customers", ["id", "name", "email", "phone"]) == {
        "id": "other",
        "name": "name",
        "email": "email",
        "phone": "phone",
    }
