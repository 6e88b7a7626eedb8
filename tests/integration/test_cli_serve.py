"""`otcdesk user add` and `otcdesk serve` as an operator runs them: real processes, real ports."""
import json
import os
import subprocess
import time

import requests

from desk_fixtures import OTCDESK, ServeProcess, log_message


def run_cli(args, tmp_path, stdin=""):
    env = {**os.environ, "OTCDESK_DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    return subprocess.run([OTCDESK, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)


def test_user_add_prints_contract_json_and_refuses_bad_input(tmp_path):
    ok = run_cli(["user", "add", "alice", "--role", "compliance"], tmp_path, "a-long-password\n")
    assert ok.returncode == 0 and json.loads(ok.stdout) == {"user": "alice", "role": "compliance"}
    again = run_cli(["user", "add", "alice", "--role", "trader"], tmp_path, "another-password\n")
    assert json.loads(again.stdout) == {"user": "alice", "role": "trader"}
    short = run_cli(["user", "add", "bob", "--role", "trader"], tmp_path, "short\n")
    assert short.returncode != 0 and "password" in json.loads(short.stdout)["error"]
    bad_role = run_cli(["user", "add", "bob", "--role", "boss"], tmp_path, "a-long-password\n")
    assert bad_role.returncode != 0 and "error" in json.loads(bad_role.stdout)


def test_serve_demo_prints_login_and_runs_the_flow(tmp_path):
    server = ServeProcess(tmp_path, "--demo")
    url = server.url
    try:
        lines = server.wait_for_log("DEMO simulator")
        [trader_line] = [log_message(ln) for ln in lines if log_message(ln).startswith("DEMO login: trader /")]
        password = trader_line.split("/", 1)[1].strip()
        s = requests.Session()
        assert s.post(f"{url}/api/login", json={"username": "trader", "password": password}).status_code == 200
        r = requests.post(f"{url}/api/sim/groups/demo/messages", json={"sender": "客户A", "text": "300 1个月 平值看跌"})
        assert r.status_code == 200
        deadline = time.time() + 20
        while time.time() < deadline and not s.get(f"{url}/api/review?status=pending").json():
            time.sleep(0.2)
        [item] = s.get(f"{url}/api/review?status=pending").json()
        assert item["requests"][0]["underlying"] == "000300.SH"
    finally:
        server.stop()
    assert (tmp_path / "otcdesk.db").exists()


def test_serve_without_demo_prints_no_login_and_has_no_simulator(tmp_path):
    server = ServeProcess(tmp_path)
    url = server.url
    try:
        lines = server.wait_for_log("otcdesk serving on")
        assert not any("DEMO" in ln for ln in lines)
        assert requests.post(f"{url}/api/sim/groups/demo/messages", json={"sender": "a", "text": "x"}).status_code in (404, 405)
        assert requests.get(f"{url}/api/review").status_code == 401
    finally:
        server.stop()
