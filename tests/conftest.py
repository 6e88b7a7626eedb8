"""Shared pytest configuration. Fixtures live in plugin modules beside this file (tests dirs have no __init__.py)."""
import os
import sys

# Make the plugin modules in tests/ importable whatever pytest's import mode.
_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

# Servers the tests start do not compile the fused Monte Carlo kernel in the background (it would compete with the
# suite for the CPU); tests/unit/pricing_engine/test_mc_fused.py compiles and checks it.
os.environ.setdefault("OTCDESK_MC_WARM_UP", "0")

pytest_plugins = ["llm_fixture", "desk_fixtures", "trace_fixtures"]
