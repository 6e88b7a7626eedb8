"""Field-level validation of an application's `institution` (CONTRACTS Part 2, KYC onboarding).

`validate_institution(raw, today)` returns the cleaned fields and a `{field: reason}` dict of what is wrong, in
Chinese, one reason per field, so the form can show each next to its input. The identifier rules are the national
standards' own: GB 32100-2015 (统一社会信用代码, check character mod 31) and GB 11643-1999 (公民身份号码, ISO 7064
MOD 11-2 check digit, a real birth date). Province codes of the ID come from GB/T 2260's first two digits.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: the 31 characters (no I, O, S, V, Z)
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
USCC_AUTHORITIES = "123456789ANY"  # position 1: the registering authority (登记管理部门代码)
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"  # check character for (Σ weight·digit) mod 11
ID_PROVINCES = frozenset({"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
                          "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
                          "65", "71", "81", "82", "83"})
MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
NAME_RE = re.compile(r"^[\u3400-\u9fff·•A-Za-z][\u3400-\u9fff·•A-Za-z .\-]{0,39}$")
INVESTOR_CATEGORIES = ("professional", "ordinary")
MAX_CAPITAL_CNY = 1e13
MIN_AGE, MAX_AGE = 18, 100
# the documents a submission carries, each at least once (PDF or image uploads)
DOCUMENT_KINDS = {"business_licence": "营业执照", "authorisation_letter": "授权委托书", "id_copy": "身份证件复印件"}
FIELDS = ("name", "uscc", "legal_representative", "legal_representative_id", "registered_capital_cny", "address",
          "contact_name", "contact_mobile", "investor_category")


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character of the first 17 characters."""
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS))
    return USCC_CHARS[(31 - total % 31) % 31]


def uscc_problem(code: str) -> str | None:
    """Why `code` is not a valid 统一社会信用代码, or None."""
    if len(code) != 18:
        return f"统一社会信用代码应为18位，收到{len(code)}位"
    bad = sorted({c for c in code if c not in USCC_CHARS})
    if bad:
        return f"统一社会信用代码含有不允许的字符：{''.join(bad)}（不使用I、O、S、V、Z）"
    if code[0] not in USCC_AUTHORITIES:
        return f"统一社会信用代码第1位（登记管理部门代码）不能是{code[0]}"
    if not code[2:8].isdigit():
        return "统一社会信用代码第3-8位应为行政区划代码（数字）"
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        return f"统一社会信用代码校验位错误：第18位应为{expected}，收到{code[17]}"
    return None


def id_check_char(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS)) % 11]


def id_birth_date(number: str) -> dt.date | None:
    try:
        return dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None


def id_problem(number: str, today: dt.date) -> str | None:
    """Why `number` is not a plausible adult's 居民身份证号, or None."""
    if len(number) != 18:
        return f"身份证号应为18位，收到{len(number)}位"
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        return "身份证号前17位应为数字，第18位为数字或X"
    if number[:2] not in ID_PROVINCES:
        return f"身份证号前两位{number[:2]}不是有效的省级行政区划代码"
    born = id_birth_date(number)
    if born is None:
        return f"身份证号中的出生日期{number[6:14]}不是有效日期"
    if born > today:
        return f"身份证号中的出生日期{born.isoformat()}晚于今天"
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if not MIN_AGE <= age <= MAX_AGE:
        return f"按身份证号，法定代表人年龄为{age}岁，不在{MIN_AGE}至{MAX_AGE}岁之间"
    expected = id_check_char(number[:17])
    if number[17] != expected:
        return f"身份证号校验位错误：第18位应为{expected}，收到{number[17]}"
    return None


def normalise_mobile(value: str) -> str:
    digits = re.sub(r"[\s\-()]", "", value)
    return digits[3:] if digits.startswith("+86") else digits[2:] if digits.startswith("86") and len(digits) == 13 \
        else digits


def suitability(category: str) -> dict:
    """Whether the investor category may trade OTC derivatives (适当性): only professional investors may."""
    if category == "professional":
        return {"eligible": True, "reason": "专业投资者，可参与场外衍生品交易"}
    return {"eligible": False, "reason": "普通投资者不得参与场外衍生品交易，需先认定为专业投资者"}


def _text(raw: dict, key: str) -> str:
    value = raw.get(key)
    return value.strip() if isinstance(value, str) else ""


def validate_institution(raw: Any, today: dt.date) -> tuple[dict, dict[str, str]]:
    """(cleaned fields, {field: reason}); the cleaned dict holds only fields that passed."""
    if not isinstance(raw, dict):
        return {}, {"institution": "institution 应为对象"}
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def need(key: str, label: str) -> str | None:
        value = _text(raw, key)
        if not value:
            errors[key] = f"请填写{label}"
            return None
        return value

    if (name := need("name", "机构名称")) is not None:
        if not 2 <= len(name) <= 100:
            errors["name"] = "机构名称应为2至100个字符"
        else:
            out["name"] = name
    if (code := need("uscc", "统一社会信用代码")) is not None:
        code = code.upper().replace(" ", "")
        problem = uscc_problem(code)
        if problem:
            errors["uscc"] = problem
        else:
            out["uscc"] = code
    for key, label in (("legal_representative", "法定代表人姓名"), ("contact_name", "联系人姓名")):
        if (person := need(key, label)) is not None:
            if not NAME_RE.match(person):
                errors[key] = f"{label}应为2至40个汉字或字母"
            else:
                out[key] = person
    if (number := need("legal_representative_id", "法定代表人身份证号")) is not None:
        number = number.upper().replace(" ", "")
        problem = id_problem(number, today)
        if problem:
            errors["legal_representative_id"] = problem
        else:
            out["legal_representative_id"] = number
    if (mobile := need("contact_mobile", "联系人手机号")) is not None:
        mobile = normalise_mobile(mobile)
        if not MOBILE_RE.match(mobile):
            errors["contact_mobile"] = "手机号应为11位中国大陆手机号码（1开头，第二位3-9）"
        else:
            out["contact_mobile"] = mobile
    capital = raw.get("registered_capital_cny")
    if capital is None or capital == "":
        errors["registered_capital_cny"] = "请填写注册资本（元）"
    else:
        try:
            value = float(capital)
        except (TypeError, ValueError):
            value = float("nan")
        if isinstance(capital, bool) or not 0 < value <= MAX_CAPITAL_CNY:
            errors["registered_capital_cny"] = f"注册资本应为大于0、不超过{MAX_CAPITAL_CNY:.0e}元的金额"
        else:
            out["registered_capital_cny"] = value
    if (address := need("address", "注册地址")) is not None:
        if not 5 <= len(address) <= 200:
            errors["address"] = "注册地址应为5至200个字符"
        else:
            out["address"] = address
    category = _text(raw, "investor_category")
    if category not in INVESTOR_CATEGORIES:
        errors["investor_category"] = "投资者类别应为 professional（专业投资者）或 ordinary（普通投资者）"
    else:
        out["investor_category"] = category
    return out, errors
