"""The demo's "Where to look" names the stack it ran on (no server): one broker and one Redis
on the single-node stack; on the clustered stack, that it is the clustered one, every broker
and every Redis Cluster seed node, never a password."""

from __future__ import annotations

from pydantic import SecretStr

from cli.demo import _stack_lines
from config.settings import Settings


def test_the_single_node_stack_shows_its_broker_and_its_redis() -> None:
    text = "\n".join(_stack_lines(Settings()))
    assert "127.0.0.1:9092" in text and "127.0.0.1:6379" in text
    assert "cluster" not in text.lower()


def test_the_clustered_stack_shows_every_broker_and_every_redis_node() -> None:
    settings = Settings(profile="cluster", redis_url="redis://admin:hunter2-secret@127.0.0.1:17001/0",
                        redis_password=SecretStr("another-secret"))
    text = "\n".join(_stack_lines(settings))
    assert "the clustered stack" in text and "--cluster" in text
    assert all(f"127.0.0.1:{port}" in text for port in (19092, 19094, 19096))
    assert all(f"127.0.0.1:{port}" in text for port in range(17001, 17007))
    assert "replication factor 3" in text and "key schema v2" in text
    assert "hunter2" not in text and "another-secret" not in text
