"""PII masking: checksums decide, institutions and public numbers stay, tokens are stable and reversible."""
import pytest

from kb_docs import id_number, luhn_number
from otcdesk.knowledge.masking import PiiMasker, id_check_digit, is_valid_id_number, is_valid_uscc, luhn_ok


def test_id_check_digit_reference_value():
    # GB 11643-1999 worked example: 11010519491231002 → X
    assert id_check_digit("11010519491231002") == "X"
    assert is_valid_id_number("11010519491231002X")
    assert not is_valid_id_number("110105194912310021")  # wrong check digit
    assert not is_valid_id_number("110105194913310029")  # month 13


def test_id_numbers_masked_only_with_valid_check_digit():
    good = id_number("44030419850612301")
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    res = PiiMasker().mask(f"客户身份证号 {good}；另一串数字 {bad} 不是身份证。")
    assert good not in res.text and bad in res.text
    assert res.counts["id_card"] == 1
    assert res.mappings[0]["kind"] == "id_card" and res.mappings[0]["original"] == good


def test_bank_cards_need_luhn():
    card = luhn_number("622202", 19)
    assert luhn_ok(card)
    not_card = card[:-1] + str((int(card[-1]) + 1) % 10)
    res = PiiMasker().mask(f"收款卡号 {card}，备用 {not_card}。")
    assert card not in res.text and not_card in res.text
    assert res.counts["bank_card"] == 1


def test_mobile_and_email_masked_public_contacts_kept():
    text = ("经办人手机 13812345678，邮箱 zhang.wei@example.com；"
            "客服热线 95553、400-888-8001，传真 021-63809892，服务邮箱 webmaster@chinastock.com.cn。")
    res = PiiMasker().mask(text)
    assert "13812345678" not in res.text and "zhang.wei@example.com" not in res.text
    for kept in ("95553", "400-888-8001", "021-63809892", "webmaster@chinastock.com.cn"):
        assert kept in res.text
    assert res.counts["mobile"] == 1 and res.counts["email"] == 1


def test_unified_social_credit_codes_are_not_personal_data():
    codes = ["914403001017814402", "91310000MA1FRBBH9Q", "91110000781703453H"]
    assert all(is_valid_uscc(c) for c in codes)
    res = PiiMasker().mask("统一社会信用代码：" + "；".join(codes))
    assert all(c in res.text for c in codes)
    assert sum(res.counts.values()) == 0


def test_person_names_in_lists_masked_institutions_kept():
    text = ("中信证券主要参与人员：方兴、徐峻峰、岳丰 华夏基金主要参与人员：王银春、桂勇\n"
            "联合申报单位：华夏基金管理有限公司、中信期货有限公司\n"
            "法定代表人（签字）： 王 召 国")
    res = PiiMasker().mask(text)
    for name in ("方兴", "徐峻峰", "岳丰", "王银春", "桂勇", "王 召 国"):
        assert name not in res.text
    assert "华夏基金管理有限公司" in res.text and "中信期货有限公司" in res.text
    assert "中信证券主要参与人员：" in res.text
    assert res.counts["person"] == 6


def test_tokens_are_stable_per_key_and_differ_across_keys():
    a, b = PiiMasker(b"k1"), PiiMasker(b"k2")
    t1 = a.mask("手机 13900001111").text
    assert t1 == a.mask("手机 13900001111").text
    assert t1 != b.mask("手机 13900001111").text
    assert "[PHONE_" in t1


@pytest.mark.parametrize("text", ["订单号 20240105123456789012", "金额 1234567890123456 元以外的编号 ABC13812345678"])
def test_long_digit_runs_that_are_not_personal_data_stay(text):
    assert PiiMasker().mask(text).text == text
