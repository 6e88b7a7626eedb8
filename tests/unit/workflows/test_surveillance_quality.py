"""Surveillance quality floors on a generated set the rules were not tuned on.

Development (in-sample) set: seed 7, 2,000 accounts × 100,000 order events and 5,000 accounts × 300,000; the
spoofing rule `min_orders = 2` was chosen there (with 1, two innocent day traders' single coincidences fired;
with 2 and 3 nothing changed). This test's set — seed 20261129, 3,000 accounts × 150,000 order events — was
generated only after the rules were fixed and was scored once, at first sight, without changing anything:

    control_group  precision 1.0  recall 1.0   (37 groups)
    wash_trade     precision 1.0  recall 1.0   (9 cases; 54 of 54 trades)
    spoofing       precision 1.0  recall 1.0   (7 cases; 61 of 61 large orders)
    near-misses    0 of 36 fired

The floors sit below those by a margin worth about one case each (the sets have few manipulators, so one case
is 10–15 % of a type). Perfect figures say the injected patterns are separable by definition, not that real
flow is this clean: see `generate`'s docstring for what is and is not simulated.
"""
from __future__ import annotations

import pytest

from otcdesk.workflows.surveillance.detect import surveil
from otcdesk.workflows.surveillance.evaluate import evaluate
from otcdesk.workflows.surveillance.generate import GenSpec, generate

FLOORS = {  # type: (precision, recall)
    "control_group": (0.95, 0.95),
    "wash_trade": (0.85, 0.85),
    "spoofing": (0.8, 0.8),
}


@pytest.fixture(scope="module")
def scored():
    data = generate(GenSpec(seed=20261129, accounts=3000, orders=150_000))
    return evaluate(surveil(data.orders, data.trades, data.accounts()), data.truth)


@pytest.mark.parametrize("kind", sorted(FLOORS))
def test_precision_and_recall_floors(scored, kind):
    precision, recall = FLOORS[kind]
    got = scored[kind]
    assert got["cases"] >= 5, got  # a floor on too few cases would say nothing
    assert got["precision"] >= precision and got["recall"] >= recall, got


def test_event_level_and_near_misses(scored):
    assert scored["wash_trade"]["trades"]["recall"] >= 0.9 and scored["wash_trade"]["trades"]["precision"] >= 0.9
    assert scored["spoofing"]["orders"]["recall"] >= 0.85 and scored["spoofing"]["orders"]["precision"] >= 0.85
    assert scored["near_misses"]["cases"] >= 30 and scored["near_misses"]["fired"] == 0, scored["near_misses"]


def test_generator_is_deterministic_per_seed():
    a = generate(GenSpec(seed=5, accounts=200, orders=5000))
    b = generate(GenSpec(seed=5, accounts=200, orders=5000))
    c = generate(GenSpec(seed=6, accounts=200, orders=5000))
    assert a.orders == b.orders and a.trades == b.trades and a.truth == b.truth
    assert a.orders != c.orders
