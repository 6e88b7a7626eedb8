"""The application form's field checks (`app.kyc.validation`): GB 32100 USCC and GB 11643 ID check characters,
impossible and implausible birth dates, mobiles, registered capital, investor category and suitability."""
from __future__ import annotations

import datetime as dt

import pytest

from otcdesk.app.kyc.validation import id_check_char, id_problem, suitability, uscc_check_char, uscc_problem, \
    validate_institution

TODAY = dt.date(2026, 11, 20)


def _uscc(first17: str) -> str:
    return first17 + uscc_check_char(first17)


def _id(first17: str) -> str:
    return first17 + id_check_char(first17)


GOOD_USCC = _uscc("91310115MA1K4XXXX".replace("X", "0"))
GOOD_ID = _id("11010519491231002")  # the standard's own worked example: 11010519491231002X


def valid_form(**changes) -> dict:
    form = {"name": "示例资本管理有限公司", "uscc": GOOD_USCC, "legal_representative": "韩梅梅",
            "legal_representative_id": GOOD_ID, "registered_capital_cny": 10_000_000, "address": "上海市浦东新区世纪大道100号",
            "contact_name": "李雷", "contact_mobile": "138 1234 5678", "investor_category": "professional"}
    form.update(changes)
    return form


def test_known_check_characters():
    assert GOOD_ID == "11010519491231002X"  # GB 11643-1999's example
    assert uscc_problem(GOOD_USCC) is None
    assert id_problem(GOOD_ID, TODAY) is None


def test_uscc_errors():
    wrong = GOOD_USCC[:-1] + ("0" if GOOD_USCC[-1] != "0" else "1")
    assert "校验位错误" in uscc_problem(wrong) and f"应为{GOOD_USCC[-1]}" in uscc_problem(wrong)
    assert "18位" in uscc_problem(GOOD_USCC[:-1])
    assert "不允许的字符" in uscc_problem("I" + GOOD_USCC[1:])
    assert "登记管理部门" in uscc_problem("0" + GOOD_USCC[1:])
    assert "行政区划" in uscc_problem(GOOD_USCC[:2] + "AB" + GOOD_USCC[4:])


@pytest.mark.parametrize("first17,reason", [
    ("11010519490230002", "不是有效日期"),  # 30 February
    ("11010520271231002", "晚于今天"),  # born in the future
    ("11010520101231002", "岁"),  # a minor
    ("11010518991231002", "岁"),  # 126 years old
    ("99010519491231002", "省级行政区划"),
])
def test_id_impossible_dates_minors_and_provinces(first17, reason):
    assert reason in id_problem(_id(first17), TODAY)


def test_id_wrong_check_char_and_shape():
    assert "校验位错误" in id_problem("110105194912310021", TODAY)
    assert "18位" in id_problem("11010519491231002", TODAY)
    assert "数字或X" in id_problem("11010519491231002Y", TODAY)


def test_a_valid_form_is_cleaned():
    clean, errors = validate_institution(valid_form(uscc=GOOD_USCC.lower(), contact_mobile="+86 138-1234-5678"),
                                         TODAY)
    assert errors == {}
    assert clean["uscc"] == GOOD_USCC and clean["contact_mobile"] == "13812345678"
    assert clean["registered_capital_cny"] == 10_000_000.0


def test_every_bad_field_is_named_with_its_reason():
    raw = valid_form(uscc=GOOD_USCC[:-1] + "I", legal_representative_id="110105194902300023",
                     contact_mobile="12812345678", registered_capital_cny=-5, investor_category="retail",
                     name="", address="短", contact_name="<script>")
    clean, errors = validate_institution(raw, TODAY)
    assert set(errors) == {"uscc", "legal_representative_id", "contact_mobile", "registered_capital_cny",
                           "investor_category", "name", "address", "contact_name"}
    assert all(isinstance(v, str) and v for v in errors.values())
    assert set(clean) == {"legal_representative"}


@pytest.mark.parametrize("capital", [0, "abc", True, 1e14, None, ""])
def test_capital_must_be_a_positive_amount(capital):
    assert "registered_capital_cny" in validate_institution(valid_form(registered_capital_cny=capital), TODAY)[1]


@pytest.mark.parametrize("mobile,ok", [("13812345678", True), ("8613812345678", True), ("12812345678", False),
                                      ("1381234567", False), ("138123456789", False), ("phone", False)])
def test_mobiles(mobile, ok):
    assert ("contact_mobile" not in validate_institution(valid_form(contact_mobile=mobile), TODAY)[1]) == ok


def test_not_an_object():
    assert validate_institution(["x"], TODAY) == ({}, {"institution": "institution 应为对象"})


def test_suitability():
    assert suitability("professional")["eligible"] is True
    assert suitability("ordinary")["eligible"] is False and "普通投资者" in suitability("ordinary")["reason"]
