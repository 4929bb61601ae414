"""ID numbers (GB 11643), phone numbers and masking, as a clerk types them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from people.identity import (
    id_check_digit,
    mask_id_number,
    mask_name,
    mask_phone,
    normalize_id_number,
    normalize_phone,
)

VALID = "11010519491231002X"  # the standard's own example


def test_valid_id_number_passes_unchanged():
    assert normalize_id_number(VALID) == VALID
    assert id_check_digit(VALID[:17]) == "X"


def test_lower_case_x_is_accepted_and_upper_cased():
    assert normalize_id_number(VALID.lower()) == VALID


def test_full_width_digits_and_spaces_are_folded():
    full = "１１０１０５ １９４９１２３１ ００２ｘ"
    assert normalize_id_number(full) == VALID


def test_bad_check_digit_is_refused_with_a_chinese_message():
    with pytest.raises(ValidationError) as exc:
        normalize_id_number(VALID[:17] + "1")
    assert exc.value.code == "check_digit"
    assert "校验位" in exc.value.messages[0]


@pytest.mark.parametrize("birth", ["19490230", "19491301", "20991231", "18000101"])
def test_impossible_birth_date_is_refused(birth):
    first17 = "110105" + birth + "002"
    with pytest.raises(ValidationError) as exc:
        normalize_id_number(first17 + id_check_digit(first17), today=dt.date(2026, 11, 23))
    assert exc.value.code == "birth_date"
    assert birth in exc.value.messages[0]


def test_fifteen_digit_legacy_number_is_converted():
    # 15-digit form: 6 area digits, 6 birth digits (yyMMdd), 3 sequence digits.
    assert normalize_id_number("110105491231002") == VALID


@pytest.mark.parametrize(
    "raw,code",
    [
        ("", "required"),
        ("1101051949123100", "length"),
        ("11010519491231002Y", "chars"),
        ("1101051949123A002X", "chars"),
    ],
)
def test_malformed_id_numbers(raw, code):
    with pytest.raises(ValidationError) as exc:
        normalize_id_number(raw)
    assert exc.value.code == code


@pytest.mark.parametrize(
    "raw",
    [
        "13812341234",
        "+86 138 1234 1234",
        "+8613812341234",
        "0086-138-1234-1234",
        "8613812341234",
        "１３８１２３４１２３４",
        " 138 1234 1234 ",
        "＋８６ １３８１２３４１２３４",
    ],
)
def test_phone_normalisation(raw):
    assert normalize_phone(raw) == "13812341234"


def test_landline_with_area_code():
    assert normalize_phone("0311-8661 2345") == "031186612345"


@pytest.mark.parametrize(
    "raw,code",
    [("", "required"), ("1381234123a", "chars"), ("12812341234", "format"), ("8661234", "format")],
)
def test_bad_phones_are_refused(raw, code):
    with pytest.raises(ValidationError) as exc:
        normalize_phone(raw)
    assert exc.value.code == code


def test_masking():
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧**娜"
    assert mask_name("李小新") == "李*新"
    assert mask_name("李") == "李*"
    assert mask_phone("13812341234") == "138****1234"
    assert mask_id_number(VALID) == "1101**********002X"
    assert mask_phone("") == mask_id_number("") == mask_name("") == ""
