"""Surveillance CSV readers: the contract's columns, empty cells, and errors that say file, line and column."""
from __future__ import annotations

import pytest

from otcdesk.workflows.surveillance.io import (InputError, read_accounts, read_orders, read_trades, write_orders,
                                               write_trades)
from otcdesk.workflows.surveillance.model import parse_ts

ORDERS = """order_id,account_id,ts,instrument,side,price,qty,event
O1,A1,2026-11-20T10:00:00.000,600519.SH,B,1500.5,100,new
O1,,2026-11-20T10:00:01.250,,,,,cancel
O2,A2,2026-11-20T02:00:02.000+00:00,600519.SH,s,,200,new
O2,A2,2026-11-20T10:00:02.500,600519.SH,S,1500,200,fill
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_orders_read_with_empty_cells_and_offsets(tmp_path):
    orders = read_orders(write(tmp_path, "orders.csv", ORDERS))
    assert [(o.order_id, o.event, o.side, o.qty) for o in orders] == [
        ("O1", "new", "B", 100.0), ("O1", "cancel", "", None), ("O2", "new", "S", 200.0), ("O2", "fill", "S", 200.0)]
    assert orders[1].ts - orders[0].ts == 1250
    assert orders[2].ts == parse_ts("2026-11-20T10:00:02+08:00")  # naive times are China time


def test_round_trip_through_the_writers(tmp_path):
    orders = read_orders(write(tmp_path, "orders.csv", ORDERS))
    write_orders(tmp_path / "again.csv", orders)
    assert read_orders(tmp_path / "again.csv") == orders
    trades = read_trades(write(tmp_path, "trades.csv", "trade_id,ts,instrument,price,qty,buy_account,sell_account\n"
                                                       "T1,2026-11-20T10:00:02.500,600519.SH,1500,200,A1,A2\n"))
    write_trades(tmp_path / "t2.csv", trades)
    assert read_trades(tmp_path / "t2.csv") == trades


@pytest.mark.parametrize("row, line, column", [
    ("O3,A1,yesterday,600519.SH,B,1,100,new", 7, "ts"),
    ("O3,A1,2026-11-20T10:00:03.000,600519.SH,X,1,100,new", 7, "side"),
    ("O3,A1,2026-11-20T10:00:03.000,600519.SH,B,1,-5,new", 7, "qty"),
    ("O3,A1,2026-11-20T10:00:03.000,600519.SH,B,abc,100,new", 7, "price"),
    ("O3,,2026-11-20T10:00:03.000,600519.SH,B,1,100,new", 7, "account_id"),
    ("O3,A1,2026-11-20T10:00:03.000,600519.SH,B,1,100,modify", 7, "event"),
])
def test_bad_order_rows_name_file_line_and_column(tmp_path, row, line, column):
    path = write(tmp_path, "orders.csv", ORDERS + "\n" + row + "\n")  # a blank line 6 before it still counts
    with pytest.raises(InputError) as err:
        read_orders(path)
    first = err.value.errors[0]
    assert (first.file, first.line, first.column) == (str(path), line, column)
    assert f"line {line}, column {column}" in str(err.value)


def test_missing_column_duplicate_account_and_missing_file(tmp_path):
    with pytest.raises(InputError) as err:
        read_trades(write(tmp_path, "trades.csv", "trade_id,ts,instrument,price,qty,buy_account\n"))
    assert [(e.line, e.column) for e in err.value.errors] == [(1, "sell_account")]
    text = ("account_id,name,id_number,mobile,address,bank_account,ip,device_id\n"
            "A1,张三,,138 0013 8000,,,,\nA1,李四,,,,,,\n")
    with pytest.raises(InputError) as err:
        read_accounts(write(tmp_path, "accounts.csv", text))
    assert (err.value.errors[0].line, err.value.errors[0].reason) == (3, "duplicate of line 2")
    with pytest.raises(InputError, match="no such file"):
        read_orders(tmp_path / "nope.csv")


def test_many_bad_rows_are_capped_and_counted(tmp_path):
    rows = "".join(f"O{i},A1,bad,600519.SH,B,1,100,new\n" for i in range(30))
    with pytest.raises(InputError) as err:
        read_orders(write(tmp_path, "orders.csv", ORDERS + rows))
    assert len(err.value.errors) == 20 and err.value.more == 10 and err.value.errors[0].line == 6


def test_accounts_are_normalised_on_read(tmp_path):
    text = ("\ufeffaccount_id,name,id_number,mobile,address,bank_account,ip,device_id,extra\n"
            "A1,张三,11010519491231002x,+86 138 0013 8000,,6222 0000 1111 2222,,aa:bb:cc:dd:ee:ff,x\n")
    [a] = read_accounts(write(tmp_path, "accounts.csv", text))
    assert (a.id_number, a.mobile, a.bank_account, a.device_id) == ("11010519491231002X", "13800138000",
                                                                    "6222000011112222", "AABBCCDDEEFF")
