"""Validation, normalisation and masking of names, phone numbers and ID numbers."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

_MOD11_2_CHECK = "10X98765432"


def _halfwidth(value: str) -> str:
    # NFKC folds full-width digits and letters (１２３ｘ) to ASCII.
    return unicodedata.normalize("NFKC", value)


def mod11_2_check(digits: str) -> str:
    """ISO 7064 MOD 11-2 check character over any number of digits (0-9 or X).

    For 17 digits the weights 2^(n-i) mod 11 are GB 11643's 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, ...
    """
    n = len(digits)
    total = sum(int(d) * pow(2, n - i, 11) for i, d in enumerate(digits))
    return _MOD11_2_CHECK[total % 11]


def id_check_digit(first17: str) -> str:
    """The GB 11643-1999 check character of an ID number's first 17 digits."""
    return mod11_2_check(first17)


def _birth_date(yyyymmdd: str) -> dt.date | None:
    try:
        return dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return None


def normalize_id_number(raw: str, *, today: dt.date | None = None) -> str:
    """Return the canonical 18-character ID number or raise ``ValidationError`` in Chinese.

    A legacy 15-digit number (issued before 1999, always born 19xx) is converted to the
    18-digit form, as the public security bureaus do.
    """
    value = re.sub(r"\s+", "", _halfwidth(raw or "")).upper()
    if not value:
        raise ValidationError(_("请填写身份证号码"), code="required")
    if len(value) == 15 and value.isdigit():
        value = value[:6] + "19" + value[6:]
        value += id_check_digit(value)
    if len(value) != 18:
        raise ValidationError(
            _("身份证号码应为18位（当前%(n)d位）") % {"n": len(value)}, code="length"
        )
    if not value[:17].isdigit() or not (value[17].isdigit() or value[17] == "X"):
        raise ValidationError(_("身份证号码前17位应为数字，最后一位为数字或X"), code="chars")
    born = _birth_date(value[6:14])
    today = today or dt.date.today()  # noqa: DTZ011 - a calendar date, not an instant
    if born is None or born > today or born.year < 1880:
        raise ValidationError(
            _("身份证号码中的出生日期%(d)s不存在") % {"d": value[6:14]}, code="birth_date"
        )
    if id_check_digit(value[:17]) != value[17]:
        raise ValidationError(_("身份证号码校验位不正确，请核对后重新输入"), code="check_digit")
    return value


_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}\d{7,8}$")


def normalize_phone(raw: str) -> str:
    """Return the phone as digits only (mobile 11 digits, landline with area code)."""
    value = re.sub(r"[\s\-()（）]", "", _halfwidth(raw or ""))
    if value.startswith("+86"):
        value = value[3:]
    elif value.startswith("0086"):
        value = value[4:]
    elif value.startswith("86") and len(value) == 13:
        value = value[2:]
    if not value:
        raise ValidationError(_("请填写联系电话"), code="required")
    if not value.isdigit():
        raise ValidationError(_("电话号码只能包含数字"), code="chars")
    if _MOBILE.match(value) or _LANDLINE.match(value):
        return value
    raise ValidationError(_("电话号码格式不正确：手机号为11位，固定电话需带区号"), code="format")


def mask_name(name: str) -> str:
    """张三 -> 张*, 李小新 -> 李*新, 欧阳娜娜 -> 欧**娜: the first and, from three on, the last."""
    name = (name or "").strip()
    if not name:
        return ""
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_phone(phone: str) -> str:
    """13812341234 -> 138****1234; landlines keep the area code and last four."""
    if not phone:
        return ""
    if len(phone) <= 7:
        return phone[:1] + "*" * (len(phone) - 1)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_id_number(value: str) -> str:
    """110101199003071234 -> 1101**********1234."""
    if not value:
        return ""
    return value[:4] + "*" * (len(value) - 8) + value[-4:]
