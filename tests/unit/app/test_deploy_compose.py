"""deploy/compose.yaml, prometheus.yml and the Grafana provisioning agree with the service: the services are there,
every OTCDESK_* variable set is one `Settings` reads, no secret is written into the files, and Prometheus scrapes
both instances' /metrics with the metrics token. `docker compose config` checks the file as Docker reads it where
the compose plugin is installed."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from otcdesk.app.settings import Settings

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
INSTANCES = ("otcdesk-1", "otcdesk-2")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def env_names_read_by_settings() -> set[str]:
    """The environment variables `Settings` reads: OTCDESK_<field>, or the field's alias (DATABASE_URL, ...)."""
    prefix = Settings.model_config["env_prefix"]
    return {(f.validation_alias if isinstance(f.validation_alias, str) else prefix + name).upper()
            for name, f in Settings.model_fields.items()}


def test_compose_has_the_services_and_two_instances_on_one_database():
    services = compose()["services"]
    assert {"postgres", *INSTANCES, "vllm", "ray-head", "prometheus", "grafana"} <= set(services)
    for name in INSTANCES:
        svc = services[name]
        assert svc["build"] == {"context": "..", "dockerfile": "Dockerfile"}
        assert svc["depends_on"]["postgres"] == {"condition": "service_healthy"}
        env = svc["environment"]
        assert re.fullmatch(r"postgresql\+psycopg://otcdesk:\$\{POSTGRES_PASSWORD[^}]*\}@postgres:5432/otcdesk",
                            env["DATABASE_URL"])
        assert env["OTCDESK_LLM_BASE_URL"] == "http://vllm:8000/v1"
        assert env["RAY_ADDRESS"] == "ray://ray-head:10001"
    assert services[INSTANCES[0]]["environment"] == services[INSTANCES[1]]["environment"]
    assert services[INSTANCES[0]]["ports"] != services[INSTANCES[1]]["ports"]
    assert "--ray-client-server-port=10001" in services["ray-head"]["command"]
    assert (DEPLOY.parent / "Dockerfile").is_file()


def test_every_variable_the_compose_file_sets_for_the_service_is_one_the_settings_read():
    known = env_names_read_by_settings()
    for name in INSTANCES:
        env = compose()["services"][name]["environment"]
        ours = {k for k in env if k.startswith("OTCDESK_")} | ({"DATABASE_URL", "RAY_ADDRESS"} & set(env))
        assert ours and ours <= known, sorted(ours - known)
        assert set(env) <= known, sorted(set(env) - known)  # nothing the service would silently ignore


def test_no_secret_is_written_in_the_deploy_files():
    text = COMPOSE.read_text()
    for var in ("POSTGRES_PASSWORD", "VLLM_API_KEY", "GRAFANA_ADMIN_PASSWORD"):
        assert re.search(r"\$\{" + var + r":\?", text), f"{var} must be required from the environment"
    services = compose()["services"]
    secrets = {"POSTGRES_PASSWORD", "GF_SECURITY_ADMIN_PASSWORD", "VLLM_API_KEY", "OTCDESK_LLM_API_KEY",
               "OTCDESK_METRICS_TOKEN", "HF_TOKEN"}
    for svc in services.values():
        for key, value in (svc.get("environment") or {}).items():
            if key in secrets:
                assert str(value).startswith("${"), f"{key} is written in the file"
    example = dict(line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert all(example[k].startswith("change-me") for k in ("POSTGRES_PASSWORD", "VLLM_API_KEY",
                                                              "GRAFANA_ADMIN_PASSWORD"))
    ignored = subprocess.run(["git", "check-ignore", "-q", str(DEPLOY / ".env")], cwd=DEPLOY)
    assert ignored.returncode == 0, "deploy/.env must be git-ignored"


def test_prometheus_scrapes_both_instances_with_the_metrics_token():
    [job] = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert sorted(job["static_configs"][0]["targets"]) == [f"{n}:8080" for n in INSTANCES]
    auth = job["authorization"]
    assert auth["type"] == "Bearer" and auth["credentials_file"] == "/run/secrets/metrics_token"
    c = compose()
    assert c["secrets"]["metrics_token"] == {"environment": "OTCDESK_METRICS_TOKEN"}
    assert "metrics_token" in c["services"]["prometheus"]["secrets"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in c["services"]["prometheus"]["volumes"]


def test_grafana_is_provisioned_with_the_dashboard():
    volumes = compose()["services"]["grafana"]["volumes"]
    assert "./grafana/otcdesk.json:/var/lib/grafana/dashboards/otcdesk.json:ro" in volumes
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
    [provider] = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/otcdesk.yml").read_text())["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    [source] = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    # file provisioning does not fill `__inputs`: the panels' ${DS_PROMETHEUS} must be a datasource variable
    dashboard = json.loads((DEPLOY / "grafana/otcdesk.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"


def test_docker_compose_config_accepts_the_file(tmp_path):
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker compose plugin is not installed here (the YAML checks above still ran)")
    r = subprocess.run([docker, "compose", "--env-file", str(DEPLOY / ".env.example"), "-f", str(COMPOSE),
                        "config", "--quiet"], capture_output=True, text=True, cwd=DEPLOY)
    assert r.returncode == 0, r.stderr
