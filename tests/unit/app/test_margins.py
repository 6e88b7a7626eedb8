"""The quoting margin table (`trading.margins`): lookup by structure and tenor, seeding from the checked-in CSV,
admin changes validated and audited with their before and after — on SQLite and the local PostgreSQL."""
from __future__ import annotations

import csv
import datetime as dt
import threading

import pytest

from otcdesk.app.repositories import transaction
from otcdesk.app.trading.margins import SEED_CSV, MarginError, MarginPolicy, MarginRow, NoMarginError, find_margin, \
    read_seed, tenor_days


def seeded() -> list[MarginRow]:
    return sorted(read_seed(), key=lambda r: r.key)

ROWS = [MarginRow("snowball", 184, 0.8, 0.5), MarginRow("snowball", 366, 1.5, 0.8), MarginRow("snowball", 731, 2.5, 1.2),
        MarginRow("*", 92, 0.8, 0.5), MarginRow("*", 1096, 3.8, 2.0)]


def _csv_rows() -> list[dict]:
    with open(SEED_CSV, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("structure, days, expected", [
    ("snowball", 1, ("snowball", 184)),
    ("snowball", 184, ("snowball", 184)),  # the bucket's bound is inclusive
    ("snowball", 185, ("snowball", 366)),
    ("snowball", 731, ("snowball", 731)),
    ("snowball", 732, ("*", 1096)),  # longer than any snowball bucket: the "*" rows
    ("vanilla", 30, ("*", 92)),  # no row of its own
    ("vanilla", 93, ("*", 1096)),
    ("vanilla", 1097, None),  # nothing covers it
])
def test_lookup_takes_the_smallest_covering_bucket_of_the_structure_then_of_any(structure, days, expected):
    row = find_margin(ROWS, structure, days)
    assert (row.key if row else None) == expected


def test_lookup_does_not_depend_on_the_order_of_the_rows():
    assert find_margin(reversed(ROWS), "snowball", 100) == find_margin(ROWS, "snowball", 100) == ROWS[0]


@pytest.mark.parametrize("product, days", [
    ({"start_date": "2026-11-20", "tenor": "1M"}, 30),
    ({"start_date": "2026-11-20", "tenor": "12M"}, 365),
    ({"start_date": "2027-01-31", "tenor": "1M"}, 28),  # month end: 31 Jan + 1M = 28 Feb
    ({"start_date": "2026-11-20", "tenor": "2W"}, 14),
    ({"start_date": "2026-11-20", "maturity_date": "2027-05-20", "tenor": "1M"}, 181),  # explicit dates win
    ({"tenor": "3M"}, 92),  # no start: from the valuation date
])
def test_tenor_in_calendar_days(product, days):
    assert tenor_days(product, dt.date(2026, 11, 20)) == days


def test_the_checked_in_table_is_valid_and_covers_every_common_tenor_of_every_structure():
    rows = read_seed()
    assert [(r.structure, r.max_tenor_days, r.margin_pct) for r in rows] == \
        [(c["structure"], int(c["max_tenor_days"]), float(c["margin_pct"])) for c in _csv_rows()]
    for structure in ("vanilla", "spread", "digital", "barrier", "sharkfin", "double_sharkfin", "snowball", "phoenix",
                      "asian", "airbag", "one_touch"):
        for tenor in ("2W", "1M", "3M", "6M", "12M", "24M", "36M"):
            days = tenor_days({"start_date": "2027-07-01", "tenor": tenor})  # 92 days in Jul-Sep: the longest 3M
            assert find_margin(rows, structure, days) is not None, (structure, tenor)


def test_an_empty_table_is_seeded_once_from_the_csv_and_audited(db_engine):
    policy = MarginPolicy(db_engine)
    with transaction(db_engine) as tx:
        assert tx.margins.count() == 0
    assert policy.rows() == seeded()
    assert policy.seed() == 0  # not empty any more
    policy.rows()
    with transaction(db_engine) as tx:
        assert tx.margins.count() == len(_csv_rows())
        [entry] = tx.audit.entries(action="margins.seeded")
        assert entry.actor == "system" and len(entry.detail["rows"]) == len(_csv_rows())


def test_two_processes_seeding_at_once_leave_one_table(db_engine):
    policies = [MarginPolicy(db_engine) for _ in range(4)]
    results: list = []
    threads = [threading.Thread(target=lambda p=p: results.append(p.rows())) for p in policies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 4 and all(r == seeded() for r in results)
    with transaction(db_engine) as tx:
        assert tx.margins.count() == len(_csv_rows())
        assert len(tx.audit.entries(action="margins.seeded")) == 1


def test_an_admin_edit_is_audited_with_before_and_after_and_applies_to_the_next_lookup(db_engine):
    policy = MarginPolicy(db_engine)
    before = policy.lookup("snowball", 365)
    assert (before.margin_pct, before.unwind_margin_pct) == (1.5, 0.8)
    table = policy.change([{"structure": "snowball", "max_tenor_days": 366, "margin_pct": 1.2, "unwind_margin_pct": 0.6},
                           {"structure": "airbag", "max_tenor_days": 366, "margin_pct": 0.9}], "admin1")
    assert {(r["structure"], r["max_tenor_days"]): (r["margin_pct"], r["updated_by"]) for r in table}[("snowball", 366)] \
        == (1.2, "admin1")
    assert policy.lookup("snowball", 365).margin_pct == 1.2 and policy.unwind_margin_pct("snowball", 365) == 0.6
    assert policy.lookup("airbag", 200).key == ("airbag", 366)  # a new bucket, unwind margin defaulting to 0
    assert policy.unwind_margin_pct("airbag", 200) == 0.0
    with transaction(db_engine) as tx:
        [upd] = tx.audit.entries(action="margins.updated")
        [new] = tx.audit.entries(action="margins.created")
    assert upd.actor == "admin1" and upd.subject == "quote_margin:snowball:366"
    assert (upd.detail["before"]["margin_pct"], upd.detail["before"]["unwind_margin_pct"]) == (1.5, 0.8)
    assert (upd.detail["after"]["margin_pct"], upd.detail["after"]["unwind_margin_pct"]) == (1.2, 0.6)
    assert upd.detail["before"]["updated_by"] == "system"
    assert new.detail["before"] is None and new.detail["after"]["margin_pct"] == 0.9


def test_an_unchanged_row_writes_no_audit_entry(db_engine):
    policy = MarginPolicy(db_engine)
    policy.change([{"structure": "vanilla", "max_tenor_days": 31, "margin_pct": 0.3, "unwind_margin_pct": 0.2}], "admin1")
    with transaction(db_engine) as tx:
        assert [a.action for a in tx.audit.entries() if a.action.startswith("margins.")] == ["margins.seeded"]


def test_delete_and_replace(db_engine):
    policy = MarginPolicy(db_engine)
    policy.change([{"structure": "snowball", "max_tenor_days": 184, "delete": True}], "admin1")
    assert policy.lookup("snowball", 100).key == ("snowball", 366)  # the next bucket up now covers it
    with pytest.raises(MarginError, match="no row"):
        policy.change([{"structure": "snowball", "max_tenor_days": 184, "delete": True}], "admin1")
    table = policy.change([{"structure": "*", "max_tenor_days": 400, "margin_pct": 1.0, "unwind_margin_pct": 0.5},
                           {"structure": "vanilla", "max_tenor_days": 31, "margin_pct": 0.2}], "admin2", replace=True)
    assert [(r["structure"], r["max_tenor_days"]) for r in table] == [("*", 400), ("vanilla", 31)]
    assert policy.lookup("snowball", 365).key == ("*", 400)
    with pytest.raises(NoMarginError):
        policy.unwind_margin_pct("snowball", 401)
    with transaction(db_engine) as tx:
        deleted = tx.audit.entries(action="margins.deleted")
        [kept] = tx.audit.entries(action="margins.updated")
    assert len(deleted) == len(_csv_rows()) - 1  # one by the edit, the others but vanilla/31 by the replacement
    assert kept.subject == "quote_margin:vanilla:31" and kept.detail["after"]["margin_pct"] == 0.2
    assert all(d.detail["after"] is None and d.detail["before"]["margin_pct"] >= 0 for d in deleted)


@pytest.mark.parametrize("row, field", [
    ({"structure": "snowball", "max_tenor_days": 366, "margin_pct": float("nan")}, "margin_pct"),
    ({"structure": "snowball", "max_tenor_days": 366, "margin_pct": float("inf")}, "margin_pct"),
    ({"structure": "snowball", "max_tenor_days": 366, "margin_pct": -0.1}, "margin_pct"),
    ({"structure": "snowball", "max_tenor_days": 366, "margin_pct": 10.0}, "margin_pct"),  # the cap is exclusive
    ({"structure": "snowball", "max_tenor_days": 366, "margin_pct": "1.5"}, "margin_pct"),
    ({"structure": "snowball", "max_tenor_days": 366, "margin_pct": True}, "margin_pct"),
    ({"structure": "snowball", "max_tenor_days": 366}, "margin_pct"),
    ({"structure": "snowball", "max_tenor_days": 366, "margin_pct": 1.0, "unwind_margin_pct": -1}, "unwind_margin_pct"),
    ({"structure": "snowbal", "max_tenor_days": 366, "margin_pct": 1.0}, "structure"),
    ({"structure": None, "max_tenor_days": 366, "margin_pct": 1.0}, "structure"),
    ({"structure": "snowball", "max_tenor_days": 0, "margin_pct": 1.0}, "max_tenor_days"),
    ({"structure": "snowball", "max_tenor_days": -30, "margin_pct": 1.0}, "max_tenor_days"),
    ({"structure": "snowball", "max_tenor_days": 30.5, "margin_pct": 1.0}, "max_tenor_days"),
    ({"structure": "snowball", "max_tenor_days": "366", "margin_pct": 1.0}, "max_tenor_days"),
    ({"structure": "snowball", "max_tenor_days": 366, "margin_pct": 1.0, "margin": 2}, "margin"),
])
def test_a_bad_row_is_refused_with_its_field_and_changes_nothing(db_engine, row, field):
    policy = MarginPolicy(db_engine)
    good = {"structure": "vanilla", "max_tenor_days": 31, "margin_pct": 0.1}
    with pytest.raises(MarginError) as err:
        policy.change([good, row], "admin1")
    assert err.value.detail["row"] == "rows[1]" and field in err.value.detail["fields"]
    assert policy.rows() == seeded()  # the good row of the same change was not written either
    with transaction(db_engine) as tx:
        assert [a.action for a in tx.audit.entries() if a.action.startswith("margins.")] == ["margins.seeded"]


def test_a_change_that_would_leave_no_catch_all_row_is_refused(db_engine):
    policy = MarginPolicy(db_engine)
    with pytest.raises(MarginError, match=r"'\*' row"):
        policy.change([{"structure": "vanilla", "max_tenor_days": 31, "margin_pct": 0.3}], "admin1", replace=True)
    stars = [{"structure": "*", "max_tenor_days": r.max_tenor_days, "delete": True} for r in read_seed()
             if r.structure == "*"]
    with pytest.raises(MarginError, match=r"'\*' row"):
        policy.change(stars, "admin1")
    with pytest.raises(MarginError, match="repeats"):
        policy.change([{"structure": "*", "max_tenor_days": 31, "margin_pct": 0.3}] * 2, "admin1")
    with pytest.raises(MarginError, match="non-empty list"):
        policy.change([], "admin1")
    assert policy.rows() == seeded()


def test_a_template_structure_is_a_known_structure(db_engine):
    policy = MarginPolicy(db_engine)
    policy.change([{"structure": "one_touch", "max_tenor_days": 92, "margin_pct": 0.4}], "admin1")
    assert policy.lookup("one_touch", 60).margin_pct == 0.4
