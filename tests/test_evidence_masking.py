"""Masking samples of source and target rows by the assessment's classification (``EvidenceMasker``).

The whole-run scan for clear-text personal data is in ``test_evidence.py``.
"""

from __future__ import annotations

import json

import pytest

from runbook_lib.privacy.masking import EvidenceMasker, mask_emails_in_text

ASSESSMENT = {
    "columns": [
        {"system": "legacy_a", "table": "users", "column": "full_name", "classification": "name"},
        {"system": "legacy_a", "table": "users", "column": "email", "classification": "email"},
        {"system": "legacy_a", "table": "users", "column": "phone", "classification": "phone"},
        {"system": "legacy_a", "table": "users", "column": "address", "classification": "address"},
        {"system": "legacy_a", "table": "users", "column": "id", "classification": "other"},
        # the assessment may classify a column its name alone would not: the assessment wins
        {
            "system": "crm",
            "table": "old_crm_customers",
            "column": "contact",
            "classification": "phone",
        },
    ]
}


@pytest.fixture
def masker() -> EvidenceMasker:
    return EvidenceMasker.from_assessment(ASSESSMENT)


def test_a_source_row_is_masked_by_the_assessments_classification(masker):
    row = {
        "id": 7,
        "full_name": "欧阳娜娜",
        "email": "Nana.OuYang@Example.com ",
        "phone": "+86 138 1234 5678",
        "address": "上海市浦东新区人民路88号",
    }
    assert masker.mask_row("legacy_a.users", row) == {
        "id": 7,
        "full_name": "欧*",
        "email": "N***@Example.com",
        "phone": "***78",
        "address": "上***",
    }


def test_the_assessment_overrides_what_the_column_name_suggests(masker):
    assert masker.mask_row("crm.old_crm_customers", {"contact": "(212) 555-0142"}) == {
        "contact": "***42"
    }


def test_a_target_row_is_masked_by_its_column_names(masker):
    row = {"customer_id": 1, "first_name": "Mary", "last_name": "Smith", "phone": "+12125550142"}
    assert masker.mask_row("customers", row) == {
        "customer_id": 1,
        "first_name": "M.",
        "last_name": "S.",
        "phone": "***42",
    }


def test_an_email_hidden_in_an_unclassified_text_column_is_masked(masker):
    masked = masker.mask_row("legacy_a.orders", {"note": "call li.wei@example.com back", "id": 3})
    assert masked == {"note": "call l***@example.com back", "id": 3}


def test_a_reject_shows_its_raw_row_and_message_masked(masker):
    reject = {
        "source_system": "legacy_a",
        "source_table": "users",
        "source_key": "17",
        "rule": "invalid_phone",
        "message": "li.wei@example.com has no usable phone",
        "raw_row": json.dumps({"id": 17, "full_name": "Li Wei", "phone": "12345678901"}),
    }
    shown = masker.mask_reject(reject)
    assert shown["raw_row"] == {"id": 17, "full_name": "L. W.", "phone": "***01"}
    assert shown["message"] == "l***@example.com has no usable phone"
    assert shown["source_key"] == "17" and shown["rule"] == "invalid_phone"


def test_an_unreadable_raw_row_is_hidden_not_shown(masker):
    shown = masker.mask_reject(
        {"source_system": "legacy_a", "source_table": "users", "raw_row": "{broken li.wei@x.org"}
    )
    assert shown["raw_row"] == "[unreadable raw row hidden]"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("a.b@c.org and X@Y.CN", "a***@c.org and X***@Y.CN"),
        ("no address here", "no address here"),
        ("", ""),
    ],
)
def test_mask_emails_in_text(text, masked):
    assert mask_emails_in_text(text) == masked
