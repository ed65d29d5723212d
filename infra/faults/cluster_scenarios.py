"""Fault scenarios on a cluster: what a three-broker Kafka and a Redis Cluster with replicas
survive. The same count as the single-node scenarios (:mod:`infra.faults.scenarios`: every
application ends as exactly one decision or one dead letter, copies identical), and the
time to recover (:mod:`infra.faults.recovery`).

- ``cluster-broker-sigkill``: the broker leading most of the applications topic's
  partitions is SIGKILLed mid-stream; the others take the lead (replication factor 3,
  ``min.insync.replicas=2``, so acknowledged events survive).
- ``cluster-redis-primary-sigkill``: the primary holding a streamed customer's features is
  SIGKILLed mid-stream; its replica is promoted, then the killed node rejoins as a replica.
- ``cluster-three-workers``: three workers share the consumer group; one is SIGKILLed and
  the others take its partitions.

The rig's settings are the clustered stack's (``profile="cluster"``). What a scenario kills
is its own: a private Kafka cluster for the broker, a private Redis Cluster for the primary
(:mod:`infra.stack.private`), stopped when the scenario ends, so the clustered stack other
tests use keeps all its nodes; a killed worker is one of the scenario's own processes.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable

from infra.faults.harness import Producing, event_text
from infra.faults.recovery import measure_recovery
from infra.faults.scenarios import (
    TEN_SECOND_SESSION,
    FaultRig,
    ScenarioResult,
    ScenarioRun,
    bureau_key_count,
    running,
    wait_until,
)
from infra.faults.servers import FaultWorker, metric_sum
from infra.stack.private import PrivateKafkaCluster, PrivateRedisCluster


def leader_broker_killed(rig: FaultRig) -> ScenarioResult:
    """A private three-broker cluster; the broker leading most partitions of the applications
    topic is SIGKILLed a third of the way through. The worker and the producer follow the
    partitions to their new leaders; nothing acknowledged is lost (two replicas in sync)."""
    kafka = PrivateKafkaCluster(rig.settings, rig.workdir / "private-kafka-cluster")
    with running(kafka), ScenarioRun(
            rig, "cluster-broker-sigkill (the leading broker of 3 SIGKILLed)", rig.messages(),
            kafka=kafka.settings) as run:
        worker, producing = run.start()
        run.wait_share(1 / 3)
        topic = run.settings.topic_applications
        leaders = {partition: kafka.leader_of(topic, partition)
                   for partition in range(run.settings.topic_partitions)}
        victim = Counter(leaders.values()).most_common(1)[0][0]
        killed_at = time.time()
        kafka.kill(victim)
        led = [partition for partition, leader in leaders.items() if leader == victim]
        new_leaders = {partition: kafka.wait_for_leader(topic, partition, other_than=victim)
                       for partition in led}
        moved_s = time.time() - killed_at
        run.outputs.reread()  # its fetches may have been waiting on the killed broker
        result = run.finish(producing)
        result.notes.update(killed_broker=victim, partitions_it_led=led,
                            new_leaders=new_leaders, leaders_moved_within_s=round(moved_s, 1))
        _record_recovery(result, run, producing, killed_at)
        if worker.process is None or worker.process.poll() is not None:
            result.failures.append(f"the worker stopped when a broker died:\n{worker.log_tail()}")
        return result


def redis_primary_killed(rig: FaultRig) -> ScenarioResult:
    """A private Redis Cluster (three primaries, a replica each); the primary holding the
    features of a customer still to be streamed is SIGKILLed a third of the way through. Its
    replica is promoted after the cluster's node timeout; batches that meet the dead node
    are retried; then the killed node is started again and rejoins as a replica."""
    from features.views import BUREAU_VIEW, feature_key

    cluster = PrivateRedisCluster(rig.workdir / "private-redis-cluster", settings=rig.settings)
    with running(cluster), ScenarioRun(
            rig, "cluster-redis-primary-sigkill (a primary SIGKILLed, its replica promoted)",
            rig.messages(), redis=cluster.settings) as run:
        worker, producing = run.start()
        run.wait_share(1 / 3)
        customer = _last_customer(run)  # whose features are read after the kill
        key = feature_key(BUREAU_VIEW, customer, "v2", run.settings.key_prefix)
        keys_before = bureau_key_count(run.settings)
        killed_at = time.time()
        killed = cluster.kill_primary_of(key)
        cluster.wait_until_ok(timeout_s=60)
        promoted_s = time.time() - killed_at
        cluster.restart(killed)
        result = run.finish(producing)
        keys_after = bureau_key_count(run.settings)
        retries = metric_sum(worker.metrics(), "creditrisk_batch_retries_total",
                             dependency="redis")
        result.notes.update(killed_node=killed.address, replica_promoted_within_s=round(promoted_s, 1),
                            redis_retries=retries, bureau_keys_before=keys_before,
                            bureau_keys_after=keys_after)
        _record_recovery(result, run, producing, killed_at)
        if keys_after != keys_before:
            result.failures.append(f"the failover lost feature data: {keys_before} bureau keys "
                                   f"before, {keys_after} after")
        return result


def one_of_three_workers_killed(rig: FaultRig) -> ScenarioResult:
    """Three workers share the consumer group (one partition of the applications topic
    each); one is SIGKILLed a third of the way through and the other two take its partition
    once the group's session times out (10 s here)."""
    with ScenarioRun(rig, "cluster-three-workers (one of three SIGKILLed)",
                     rig.messages()) as run:
        workers = [run.worker(f"worker-{name}", **TEN_SECOND_SESSION) for name in "abc"]
        wait_until(lambda: all(_assigned(worker) > 0 for worker in workers), 90,
                    "all three workers assigned")
        producing = run.produce()
        run.wait_share(1 / 3)
        victim, survivors = workers[1], [workers[0], workers[2]]
        killed_at = time.time()
        victim.kill()
        result = run.finish(producing)
        assigned = {worker.name: _assigned(worker) for worker in survivors}
        result.notes.update(killed_worker=victim.name, survivors_partitions=assigned)
        _record_recovery(result, run, producing, killed_at)
        # their own group's leader topic and all of the input's
        if sum(assigned.values()) < run.settings.topic_partitions:
            result.failures.append(f"the surviving workers hold {assigned} partitions, fewer "
                                   f"than the {run.settings.topic_partitions} of the input topic")
        return result


CLUSTER_SCENARIOS: dict[str, Callable[[FaultRig], ScenarioResult]] = {
    "cluster-broker-sigkill": leader_broker_killed,
    "cluster-redis-primary-sigkill": redis_primary_killed,
    "cluster-three-workers": one_of_three_workers_killed,
}


def _record_recovery(result: ScenarioResult, run: ScenarioRun, producing: Producing,
                     killed_at: float) -> None:
    recovery = measure_recovery(run.messages, producing.handed_at, run.outputs.decisions,
                                killed_at)
    result.recovery_s = recovery.recovery_s
    result.notes.update(recovery.notes())


def _last_customer(run: ScenarioRun) -> str:
    """The customer of the last application the run sends."""
    last = next(message for message in reversed(run.messages) if message.application_id)
    event = json.loads(last.value)
    if not isinstance(event, dict):
        raise ValueError(f"application {last.application_id} is not a JSON object")
    return event_text(event, "customer_id")


def _assigned(worker: FaultWorker) -> int:
    assigned = worker.health().get("kafka", {}).get("assigned_partitions", 0)
    return int(assigned) if isinstance(assigned, int | float) else 0
