"""Local stack behaviour that needs no server: configs, clear errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from config.settings import Settings
from infra.stack.services import Kafka, Prometheus, Redis, StackError


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(stack_dir=tmp_path / "stack", **overrides)


def test_busy_port_is_reported_with_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        redis = Redis(_settings(tmp_path, redis_url=f"redis://127.0.0.1:{port}/0"))
        with pytest.raises(StackError, match=f"port {port} is in use by another program"):
            redis.start(echo=lambda line: None)


def test_missing_binary_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    prometheus = Prometheus(_settings(tmp_path, prometheus_port=free_port))
    with pytest.raises(StackError, match="apt-get install prometheus"):
        prometheus.start(echo=lambda line: None)


def test_kafka_config_is_rendered_for_loopback_and_the_configured_ports(tmp_path: Path) -> None:
    kafka = Kafka(_settings(tmp_path, kafka_bootstrap="127.0.0.1:29092", kafka_controller_port=29093))
    kafka.home.mkdir(parents=True)
    kafka._write_config()
    config = dict(line.split("=", 1) for line in (kafka.home / "server.properties").read_text().splitlines()
                  if line and not line.startswith("#"))
    assert config["listeners"] == "SASL_SSL://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert config["advertised.listeners"] == "SASL_SSL://127.0.0.1:29092"
    assert config["log.dirs"] == str(kafka.home / "data")
    assert "${" not in (kafka.home / "server.properties").read_text()


def test_kafka_is_authenticated_encrypted_and_creates_no_topic_by_itself(tmp_path: Path) -> None:
    kafka = Kafka(_settings(tmp_path))
    kafka.home.mkdir(parents=True)
    kafka._write_config()
    path = kafka.home / "server.properties"
    config = dict(line.split("=", 1) for line in path.read_text().splitlines()
                  if line and not line.startswith("#"))
    assert config["auto.create.topics.enable"] == "false"
    assert config["allow.everyone.if.no.acl.found"] == "false"
    assert config["listener.security.protocol.map"] == "CONTROLLER:SSL,SASL_SSL:SASL_SSL"
    assert config["listener.name.controller.ssl.client.auth"] == "required"
    assert config["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    # The admin password is generated, kept owner-only, and only the broker's config holds it.
    password = (tmp_path / "stack" / "secrets" / "kafka-admin").read_text().strip()
    assert len(password) >= 24 and password in config["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    for secret in (path, tmp_path / "stack" / "secrets" / "kafka-admin",
                   tmp_path / "stack" / "tls" / "broker.pem"):
        assert secret.stat().st_mode & 0o077 == 0, f"{secret} is readable by others"
    # The broker's certificate verifies against the CA for the loopback address clients use.
    import ssl

    context = ssl.create_default_context(cafile=str(tmp_path / "stack" / "tls" / "ca.pem"))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "stack" / "tls" / "broker.pem")
    client_side, server_side = socket.socketpair()
    client_side.setblocking(False)
    server_side.setblocking(False)
    with client_side, server_side:
        wrapped_client = context.wrap_socket(client_side, server_hostname="127.0.0.1",
                                             do_handshake_on_connect=False)
        wrapped_server = server.wrap_socket(server_side, server_side=True,
                                            do_handshake_on_connect=False)
        for _ in range(20):  # step both ends of the in-memory handshake until it completes
            done = 0
            for end in (wrapped_client, wrapped_server):
                try:
                    end.do_handshake()
                    done += 1
                except ssl.SSLWantReadError:
                    pass
            if done == 2:
                break
        assert wrapped_client.getpeercert()["subject"] == ((("commonName", "creditrisk-broker"),),)


def test_prometheus_config_points_at_local_targets(tmp_path: Path) -> None:
    prometheus = Prometheus(_settings(tmp_path, prometheus_port=29090, worker_port=26066))
    prometheus.home.mkdir(parents=True)
    prometheus.prepare()
    config = (prometheus.home / "prometheus.yml").read_text()
    assert str(prometheus.targets_dir) in config
    assert "127.0.0.1:29090" in config
    settings_lines = [line for line in config.splitlines() if not line.lstrip().startswith("#")]
    assert not any("/etc/prometheus" in line for line in settings_lines)
    assert "127.0.0.1:26066" in (prometheus.targets_dir / "worker.json").read_text()


def test_nodes_prepared_side_by_side_get_one_ca_and_a_certificate_it_signed(tmp_path: Path) -> None:
    # The three nodes of a quorum ask for the certificates at once (the clustered stack's
    # start): one CA must come out, or a node trusts a CA the others' certificates lack.
    import threading

    from infra.stack.tls import ensure_broker_tls

    folder, start = tmp_path / "tls", threading.Barrier(3)
    def node() -> None:
        start.wait()
        ensure_broker_tls(folder)
    threads = [threading.Thread(target=node) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ca = (folder / "ca.pem").read_bytes()
    keystore = (folder / "broker.pem").read_bytes()
    assert keystore.endswith(ca)  # the CA the broker presents is the one every client trusts
    assert keystore.count(b"BEGIN CERTIFICATE") == 2 and ca.count(b"BEGIN CERTIFICATE") == 1
