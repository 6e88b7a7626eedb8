"""Checked-in reference data: the underlying pool, the lexicon and the CRF model."""
from __future__ import annotations

import csv
import filecmp
import re

from otcdesk.ner.crf import MODEL_PATH
from otcdesk.ner.pool import DATA_DIR, UnderlyingPool, exchange_for_code

REQUIRED_COMMODITIES = ["AU.SHF", "AG.SHF", "CU.SHF", "AL.SHF", "ZN.SHF", "RB.SHF", "HC.SHF", "RU.SHF", "I.DCE", "M.DCE",
                        "Y.DCE", "P.DCE", "C.DCE", "JM.DCE", "J.DCE", "CF.CZC", "SR.CZC", "TA.CZC", "MA.CZC", "SA.CZC",
                        "FG.CZC", "SC.INE"]
REQUIRED_INDICES = ["000016.SH", "000300.SH", "000905.SH", "000852.SH", "932000.CSI", "000510.SH", "399006.SZ",
                    "000688.SH", "399001.SZ"]


def test_stock_pool_has_300_plus_well_formed_unique_codes():
    with open(DATA_DIR / "pool_stocks.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 300
    codes = [r["code"] for r in rows]
    names = [r["name"] for r in rows]
    assert len(set(codes)) == len(codes) and len(set(names)) == len(names)
    for r in rows:
        assert re.fullmatch(r"\d{6}", r["code"]) and exchange_for_code(r["code"]) in ("SH", "SZ"), r


def test_short_names_traders_use():
    pool = UnderlyingPool()
    for alias, code in {"茅台": "600519.SH", "宁德": "300750.SZ", "招行": "600036.SH", "平安": "601318.SH",
                        "东财": "300059.SZ", "隆基": "601012.SH", "中证500": "000905.SH", "沪金": "AU.SHF",
                        "螺纹": "RB.SHF", "豆粕": "M.DCE", "棉花": "CF.CZC", "原油": "SC.INE"}.items():
        assert pool.aliases[alias] == code


def test_no_alias_points_at_two_underlyings():
    seen: dict[str, str] = {}
    for fname in ("pool_indices_futures.csv", "pool_stocks.csv"):
        with open(DATA_DIR / fname, encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                code = row["code"]
                for a in [row["name"], *filter(None, (row.get("aliases") or "").split("|"))]:
                    key = a.upper() if re.fullmatch(r"[A-Za-z0-9]+", a) else a
                    assert seen.setdefault(key, code) == code, (a, seen[key], code)


def test_required_indices_and_commodity_main_contracts():
    pool = UnderlyingPool()
    for code in REQUIRED_INDICES + REQUIRED_COMMODITIES:
        assert code in pool.by_code, code


def test_prefix_rules():
    assert [exchange_for_code(c) for c in ("600000", "688001", "000001", "300001", "301001", "830001", "430001",
                                           "920001", "510300", "159915")] == \
        ["SH", "SH", "SZ", "SZ", "SZ", "BJ", "BJ", "BJ", "SH", "SZ"]
    assert exchange_for_code("400001") == "BJ" and exchange_for_code("932000") == "CSI"
    assert [exchange_for_code(c) for c in ("700001", "123456", "999999", "530001", "210001")] == [None] * 5


def test_crf_training_is_deterministic_and_the_checked_in_model_is_current(tmp_path):
    from otcdesk.ner.train_crf import train

    out = tmp_path / "model.crfsuite"
    train(out)
    assert filecmp.cmp(out, MODEL_PATH, shallow=False), "retrain: python -m otcdesk.ner.train_crf"
