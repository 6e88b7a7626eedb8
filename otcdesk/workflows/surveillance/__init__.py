"""Market-abuse surveillance (市场监察): actual-control groups, wash trades (对倒) and spoofing (幌骗).

A pure library: data in, results out; no database, environment or network. `surveil()` (detect.py) runs every
detector and returns the contract's JSON document (CONTRACTS Part 2, "Surveillance"); `io` reads and writes the
contract's CSV files; `generate` makes seeded synthetic order flow with injected ground truth and `evaluate`
scores a result against it.
"""
from otcdesk.workflows.surveillance.control import ControlRules, control_groups
from otcdesk.workflows.surveillance.detect import SurveillanceRules, surveil
from otcdesk.workflows.surveillance.io import InputError, read_accounts, read_orders, read_trades
from otcdesk.workflows.surveillance.model import Account, Order, Trade
from otcdesk.workflows.surveillance.spoofing import SpoofingRules
from otcdesk.workflows.surveillance.wash import WashRules

__all__ = ["Account", "ControlRules", "InputError", "Order", "SpoofingRules", "SurveillanceRules", "Trade",
           "WashRules", "control_groups", "read_accounts", "read_orders", "read_trades", "surveil"]
