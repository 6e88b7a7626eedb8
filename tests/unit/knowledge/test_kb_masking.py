"""PII masking: every ID shape and fixed line is masked, names in running text too; institutions, public numbers
and organisation codes stay; tokens are stable and reversible; recall floors on the synthetic set."""
import re

import pytest

from kb_docs import id_number, luhn_number
from pii_synth import evaluate, non_pii_sentences, pii_samples
from otcdesk.knowledge.masking import (KINDS, TOKEN_RE, MaskResult, PiiMasker, id_check_digit, is_valid_id_number,
                                       is_valid_uscc, luhn_ok)


def test_id_check_digit_reference_value():
    # GB 11643-1999 worked example: 11010519491231002 → X
    assert id_check_digit("11010519491231002") == "X"
    assert is_valid_id_number("11010519491231002X")
    assert not is_valid_id_number("110105194912310021")  # wrong check digit
    assert not is_valid_id_number("110105194913310029")  # month 13


def test_id_numbers_masked_whatever_the_check_digit_and_flagged():
    good = id_number("44030419850612301")
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    old = "440304850612301"  # first-generation, 15 digits
    spaced = f"{good[:6]} {good[6:14]} {good[14:]}"
    res = PiiMasker().mask(f"客户身份证号 {good}；另一证件号 {bad}；旧证 {old}；分组写法 {spaced}。")
    assert not any(v in res.text for v in (good, bad, old, spaced))
    assert res.counts["id_card"] == 4
    assert {m["original"]: m["valid"] for m in res.mappings} == {good: True, bad: False, old: True}
    assert {m["kind"] for m in res.mappings} == {"id_card"}


@pytest.mark.parametrize("text, value, kind", [
    ("客户身份证号 110105194912310021，请核对。", "110105194912310021", "id_card"),  # wrong check digit
    ("办公电话 021-63809892，工作日可拨打。", "63809892", "landline"),
    ("本次交易由韩致钧负责，请各方配合。", "韩致钧", "person"),
])
def test_the_reported_misses_are_masked(text, value, kind):
    res = PiiMasker().mask(text)
    assert value not in res.text
    assert [m["kind"] for m in res.mappings] == [kind]


def test_bank_cards_need_luhn():
    card = luhn_number("622202", 19)
    assert luhn_ok(card)
    not_card = card[:-1] + str((int(card[-1]) + 1) % 10)
    res = PiiMasker().mask(f"收款卡号 {card}，备用 {not_card}。")
    assert card not in res.text and not_card in res.text
    assert res.counts["bank_card"] == 1


def test_an_18_digit_card_is_a_card_not_an_id():
    card = luhn_number("62258800", 18)
    res = PiiMasker().mask(f"卡号 {card}")
    assert card not in res.text and res.counts == {**dict.fromkeys(KINDS, 0), "bank_card": 1}


def test_mobile_email_and_fixed_lines_masked_public_contacts_kept():
    text = ("经办人手机 13812345678，邮箱 zhang.wei@example.com；"
            "客服热线 95553、400-888-8001，传真 021-63809892，服务邮箱 webmaster@chinastock.com.cn。")
    res = PiiMasker().mask(text)
    for masked in ("13812345678", "zhang.wei@example.com", "021-63809892"):  # a fax line may be a person's
        assert masked not in res.text
    for kept in ("95553", "400-888-8001", "webmaster@chinastock.com.cn"):
        assert kept in res.text
    assert res.counts["mobile"] == 1 and res.counts["email"] == 1 and res.counts["landline"] == 1


def test_an_email_right_after_chinese_text_is_masked():
    res = PiiMasker().mask("请把确认书发到li.na88@example.com，谢谢。")
    assert "li.na88" not in res.text and res.counts["email"] == 1


@pytest.mark.parametrize("written, recorded", [
    ("021-63809892", "021-63809892"), ("(021)63809892", "021-63809892"), ("（0755）8234 5678", "0755-82345678"),
    ("010 87654321", "010-87654321"), ("02163809892", "021-63809892"), ("0571-8765432转801", "0571-8765432-801"),
    ("+86 21 6380 9892", "021-63809892"), ("+86-10-87654321 ext 12", "010-87654321-12"),
])
def test_fixed_lines_in_every_written_form_share_one_normal_form(written, recorded):
    res = PiiMasker().mask(f"联系电话：{written}，工作日拨打。")
    assert [(m["kind"], m["original"]) for m in res.mappings] == [("landline", recorded)]
    assert not re.search(r"\d", TOKEN_RE.sub("", res.text))


def test_service_numbers_stay_and_a_bare_local_number_after_a_phone_label_is_masked():
    kept = "客服热线：95553、95588、400-888-8001、4008888001、800-810-8888、12345、12315、0219553"
    assert PiiMasker().mask(kept).text == kept
    res = PiiMasker().mask("座机：6380 9892")
    assert "6380" not in res.text and res.counts["landline"] == 1


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


@pytest.mark.parametrize("text, name", [
    ("客户谭宽于2021年6月13日签署了主协议。", "谭宽"),
    ("请联系吕素确认敲出观察日。", "吕素"),
    ("乔振松先生希望报价有效期延长至明天。", "乔振松"),
    ("对接人江淑已离职，改由康玲启跟进。", "江淑"),
    ("对接人江淑已离职，改由康玲启跟进。", "康玲启"),
    ("会议由欧阳明辉主持。", "欧阳明辉"),
    ("受益人为贾琦。", "贾琦"),
    ("参会人员包括邹艳荷、龙茜功、史韵达。", "龙茜功"),
])
def test_person_names_in_running_text_are_masked(text, name):
    res = PiiMasker().mask(text)
    assert name not in res.text
    assert name in [m["original"] for m in res.mappings if m["kind"] == "person"]


def test_a_bare_surname_before_a_title_is_masked():
    res = PiiMasker().mask("谢谢王总，明天再联系。")
    assert res.text.startswith("谢谢[NAME_") and res.text.endswith("]总，明天再联系。")


@pytest.mark.parametrize("text", [
    "易方达基金和景顺长城基金参与了申购，易方达的产品表现良好。",
    "挂钩国证2000和中证500指数，产品为安鑫一号，另有隆基 三个月的报价。",
    "地址：上海市浦东新区安立路88号。",
    "本项目由华泰证券负责，方正证券参与，客户经理将在T+1日回访，项目经理负责进度管理。",
    "提高总体效率，全面提升风险管理水平，方案由风控部审定。",
    "爱尔眼科近一个月波动率上升，与申万相比我们的票息更高。",
    "法定代表人（签字）：\t\t年 月 日",
])
def test_institutions_places_products_and_indexes_stay(text):
    assert PiiMasker().mask(text).text == text


def test_tokens_are_stable_per_key_and_differ_across_keys():
    a, b = PiiMasker(b"k1"), PiiMasker(b"k2")
    t1 = a.mask("手机 13900001111").text
    assert t1 == a.mask("手机 13900001111").text
    assert t1 != b.mask("手机 13900001111").text
    assert "[PHONE_" in t1


def test_every_kind_has_a_token_the_vault_pattern_finds():
    masker = PiiMasker()
    assert set(MaskResult("").counts) == set(KINDS)
    for kind in KINDS:
        assert TOKEN_RE.fullmatch(masker.token(kind, "x")), kind


def test_masking_masked_text_changes_nothing():
    # a token whose digest is all digits must not be read as a phone number after its TEL label
    masker = PiiMasker()
    numbers = (f"021-6380{i:04d}" for i in range(10000))
    number = next(n for n in numbers if masker.token("landline", n)[5:13].isdigit())
    once = masker.mask(f"电话 {number}，联系人：张伟").text
    assert masker.mask(once).text == once


@pytest.mark.parametrize("text", ["订单号 20240105123456789012", "金额 1234567890123456 元以外的编号 ABC13812345678"])
def test_long_digit_runs_that_are_not_personal_data_stay(text):
    assert PiiMasker().mask(text).text == text


# Floors a little under what benchmarks/bench_masking.py measures; raise them when the masker improves.
# Names: dev was tuned against; heldout and blind were first scored at 0.898/0.957 and 0.832/0.940.
_NUMBER_KINDS = ("id_valid", "id_invalid", "id15", "mobile", "landline", "bank_card", "email")
_NAME_FLOORS = {"dev": (0.95, 0.98), "heldout": (0.90, 0.93), "blind": (0.88, 0.90)}


@pytest.fixture(scope="module")
def non_pii():
    return non_pii_sentences()


@pytest.mark.parametrize("split", list(_NAME_FLOORS))
def test_recall_floors_on_the_synthetic_set(split, non_pii):
    res = evaluate(PiiMasker(), pii_samples(split), non_pii)
    recall = res["recall"]
    assert all(recall[k] >= 0.99 for k in _NUMBER_KINDS), {k: recall[k] for k in _NUMBER_KINDS}
    text_floor, list_floor = _NAME_FLOORS[split]
    assert recall["name_text"] >= text_floor and recall["name_list"] >= list_floor, recall
    assert all(res["precision"][k] >= 0.99 for k in ("id_card", "mobile", "landline", "bank_card", "email"))
    assert res["precision"]["person"] >= 0.97
    assert res["fp_rate"] <= 0.02, res["fp_examples"]


def test_a_conjunction_before_a_word_is_not_a_surname():
    """和 is a surname, but 负责人和合规总监 joins two roles: 合规 is a word, not a given name."""
    from otcdesk.knowledge.masking import PiiMasker

    out = PiiMasker().mask("经部门负责人和合规总监双人审批，由张伟总监签字。").text
    assert "和合规总监" in out and "张伟" not in out
