"""Shared pytest configuration. Fixtures live in plugin modules beside this file (tests dirs have no __init__.py)."""
import os
import sys

# Make the plugin modules in tests/ importable whatever pytest's import mode.
_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

pytest_plugins = ["llm_fixture", "desk_fixtures"]
