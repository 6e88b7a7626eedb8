"""A non-editable install into a clean virtual environment, as an operator would deploy the wheel.

The project installs under one import namespace (`otcdesk.*`): llama-index-workflows keeps its own top-level
`workflows` package intact, no generic top-level names (`app`, `agents`, ...) land in site-packages, and the
installed CLI and service find their package data (parser lexicon and CRF model, templates, static console
pages, the demo product guide, migrations) from any working directory.
"""
import json
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest
import requests

from desk_fixtures import free_port, log_message

REPO = Path(__file__).resolve().parents[2]
GENERIC_NAMES = ("app", "agents", "bots", "knowledge", "pricing_engine", "ner")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python, otcdesk script, site-packages) of a clean venv holding the built wheel and its dependencies."""
    root = tmp_path_factory.mktemp("pkg")
    dist = root / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    [wheel] = dist.glob("otcdesk-*.whl")
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    inst = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                          timeout=1500, env=_clean_env(root))  # a PYTHONPATH holding the checkout would satisfy it
    if inst.returncode != 0:
        unreachable = "Could not find a version" in inst.stderr or "NewConnectionError" in inst.stderr
        if unreachable and os.environ.get("CI") != "true":
            pytest.skip(f"package registry unreachable: {inst.stderr[-300:]}")
        raise AssertionError(inst.stderr[-3000:])
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    return py, env_dir / "bin" / "otcdesk", Path(site)


def _clean_env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DATABASE_URL", "VIRTUAL_ENV")}
    return {**env, "OTCDESK_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
def test_both_workflows_packages_import_and_no_generic_top_level_names(installed, tmp_path):
    py, _, site = installed
    code = ("from workflows import Workflow; import workflows, otcdesk.workflows.review, otcdesk.app.cli, "
            "llama_index.core; print(workflows.__file__); print(otcdesk.workflows.__file__)")
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env=_clean_env(tmp_path), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    theirs, ours = out.stdout.split()
    assert Path(theirs).parent == site / "workflows" and Path(ours).parent == site / "otcdesk" / "workflows"
    for name in GENERIC_NAMES:
        assert not (site / name).exists(), f"top-level {name!r} installed into site-packages"


@pytest.mark.slow
def test_installed_cli_runs_from_another_directory(installed, tmp_path):
    _, otcdesk, _ = installed
    env = _clean_env(tmp_path / "data")
    parsed = subprocess.run([str(otcdesk), "parse", "300、创业板 各来一个 2周和1个月的平值看跌"], capture_output=True,
                            text=True, cwd=tmp_path, env=env, timeout=300)
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    assert len(json.loads(parsed.stdout)["requests"]) == 4
    doc = {"product": {"structure": "vanilla", "option_type": "call", "tenor": "12M", "strike_pct": 100},
           "market": {"spot": 100, "vol": 0.2, "rate": 0.03, "div": 0}, "valuation_date": "2026-11-20"}
    priced = subprocess.run([str(otcdesk), "price", json.dumps(doc)], capture_output=True, text=True, cwd=tmp_path,
                            env=env, timeout=300)
    assert priced.returncode == 0, priced.stderr[-3000:]
    assert json.loads(priced.stdout)["engine"] == "analytic"


@pytest.mark.slow
def test_installed_service_serves_the_demo_with_its_package_data(installed, tmp_path):
    _, otcdesk, _ = installed
    port = free_port()
    proc = subprocess.Popen([str(otcdesk), "serve", "--demo", "--port", str(port)], cwd=tmp_path,
                            env=_clean_env(tmp_path / "data"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline, lines = time.time() + 180, []
        while time.time() < deadline and not any("DEMO simulator" in ln for ln in lines):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        password = next(log_message(ln).split("/", 1)[1].strip() for ln in lines
                        if log_message(ln).startswith("DEMO login: trader /"))
        s = requests.Session()
        assert s.post(f"{url}/api/login", json={"username": "trader", "password": password}).status_code == 200
        assert "<html" in s.get(f"{url}/console").text.lower()
        answer = s.post(f"{url}/api/kb/ask", json={"question": "雪球的敲入是怎么观察的？"}).json()
        assert not answer["refused"] and answer["citations"][0]["source"] == "product_guide.md"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
