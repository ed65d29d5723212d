"""docker-compose.yml cannot run here (no Docker engine), so its shape is checked."""

from __future__ import annotations

from pathlib import Path

import yaml

from config.settings import REPO_ROOT

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_every_product_service_is_defined() -> None:
    assert {"kafka", "redis", "postgres", "prometheus", "grafana", "worker", "ledger", "console"} <= set(SERVICES)


def test_every_service_has_an_image_with_a_pinned_tag() -> None:
    for name, service in SERVICES.items():
        image = service.get("image", "")
        assert ":" in image and not image.endswith(":latest"), f"{name}: image {image!r} not pinned"


def test_every_mounted_host_path_exists() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (REPO_ROOT / source).exists(), f"{name}: mounts missing {source}"
    build = SERVICES["topics"]["build"]
    assert (REPO_ROOT / build["context"] / build["dockerfile"]).is_file()


def test_ports_are_the_documented_defaults_on_loopback() -> None:
    expected = {"kafka": 9092, "redis": 6379, "prometheus": 9090, "grafana": 3000,
                "worker": 6066, "ledger": 6067, "console": 8501}
    for name, port in expected.items():
        assert f"127.0.0.1:{port}:{port}" in SERVICES[name]["ports"], name


def test_the_ledger_password_comes_from_the_environment_never_the_file() -> None:
    assert "${CREDITRISK_POSTGRES_PASSWORD:?" in SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert "127.0.0.1:5433:5432" in SERVICES["postgres"]["ports"]


def test_kafka_runs_the_local_brokers_config_rendered_by_the_stack(tmp_path: Path,
                                                                   monkeypatch) -> None:
    """The broker starts from infra/kafka/server.properties as `stack kafka-config` renders it
    for the host `kafka` (SASL/SCRAM over TLS, ACLs, no topic auto-creation), and every
    client service verifies it with that CA and logs in as its own principal."""
    from typer.testing import CliRunner

    from cli.main import app

    kafka, renderer = SERVICES["kafka"], SERVICES["kafka-config"]
    assert renderer["command"][:3] == ["creditrisk", "stack", "kafka-config"]
    assert "kafka-config:/kafka-config:ro" in kafka["volumes"]
    assert "kafka-server-start.sh /kafka-config/server.properties" in kafka["entrypoint"][-1]
    assert "--add-scram" in kafka["entrypoint"][-1] and "@/tmp/format.args" in kafka["entrypoint"][-1]
    assert kafka["depends_on"]["kafka-config"]["condition"] == "service_completed_successfully"

    monkeypatch.setenv("CREDITRISK_KAFKA_ADMIN_PASSWORD", "compose-admin-password-1")
    out = tmp_path / "kafka-config"
    result = CliRunner().invoke(app, ["stack", "kafka-config", "--out", str(out), "--host", "kafka"])
    assert result.exit_code == 0, result.output
    assert "compose-admin-password-1" not in result.output
    config = dict(line.split("=", 1) for line in (out / "server.properties").read_text().splitlines()
                  if line and not line.startswith("#"))
    assert config["advertised.listeners"] == "SASL_SSL://kafka:9092"
    assert config["auto.create.topics.enable"] == "false"
    assert config["ssl.keystore.location"] == str(out / "tls" / "broker.pem")
    assert (out / "server.properties").stat().st_mode & 0o077 == 0

    variables = {"worker": "WORKER", "ledger": "LEDGER", "topics": "ADMIN"}
    for service, role in variables.items():
        environment = SERVICES[service]["environment"]
        assert environment["CREDITRISK_KAFKA_SSL_CAFILE"] == "/kafka-ca/ca.pem"
        # The clients get the CA certificate only: not the broker's key, not its config
        # (which holds the admin password).
        assert "kafka-ca:/kafka-ca:ro" in SERVICES[service]["volumes"]
        assert not any(volume.startswith("kafka-config") for volume in SERVICES[service]["volumes"])
        assert environment["CREDITRISK_KAFKA_USERNAME"] == role.lower()
        assert environment["CREDITRISK_KAFKA_PASSWORD"].startswith(f"${{CREDITRISK_KAFKA_{role}_PASSWORD:?")


def test_prometheus_and_grafana_use_the_infra_configs() -> None:
    prometheus_mounts = " ".join(SERVICES["prometheus"]["volumes"])
    assert "./infra/prometheus:/etc/prometheus" in prometheus_mounts
    grafana_mounts = " ".join(SERVICES["grafana"]["volumes"])
    assert "./infra/grafana/provisioning:/etc/grafana/provisioning" in grafana_mounts
    datasource = yaml.safe_load(
        (REPO_ROOT / "infra/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    assert Path(REPO_ROOT / "infra/grafana/dashboards").is_dir()


def test_the_worker_and_console_credentials_come_from_the_environment_never_the_file() -> None:
    """Both bind 0.0.0.0 in their containers: the worker must get its token (it refuses to
    start without one), the console its ledger role's password (its users sign in against
    the ledger), and compose must refuse to run without them rather than leave them empty."""
    worker, console = SERVICES["worker"]["environment"], SERVICES["console"]["environment"]
    assert worker["CREDITRISK_WORKER_HOST"] == "0.0.0.0" and console["CREDITRISK_CONSOLE_HOST"] == "0.0.0.0"
    for environment in (worker, console):
        assert environment["CREDITRISK_API_TOKEN"].startswith("${CREDITRISK_API_TOKEN:?")
    ledger = SERVICES["ledger"]["environment"]
    for environment in (console, ledger):
        assert environment["CREDITRISK_CONSOLE_POSTGRES_PASSWORD"].startswith(
            "${CREDITRISK_CONSOLE_POSTGRES_PASSWORD:?")


def test_redis_has_the_stack_acl_users_and_each_service_logs_in_as_its_own() -> None:
    assert "--aclfile" in SERVICES["redis"]["command"]
    assert SERVICES["redis"]["depends_on"]["redis-users"]["condition"] == "service_completed_successfully"
    renderer = SERVICES["redis-users"]
    assert renderer["command"][:3] == ["creditrisk", "stack", "redis-acl"]
    for role in ("admin", "materializer", "worker", "ledger", "console"):
        name = f"CREDITRISK_REDIS_{role.upper()}_PASSWORD"
        assert renderer["environment"][name].startswith(f"${{{name}:?")
    for service in ("worker", "ledger", "console"):
        environment = SERVICES[service]["environment"]
        assert environment["CREDITRISK_REDIS_USERNAME"] == service
        assert environment["CREDITRISK_REDIS_PASSWORD"].startswith(
            f"${{CREDITRISK_REDIS_{service.upper()}_PASSWORD:?")
