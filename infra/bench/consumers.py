"""The consumers the throughput benchmark measures the worker against, one process each.

``python -m infra.bench.consumers KIND --input T --output T --group G`` with KIND:

- ``faust``: a pass-through Faust agent, micro-batched like the worker
  (``take_events(200, within=0.2)``), forwarding every message and awaiting the batch's
  delivery: the ceiling of any Faust worker on this machine;
- ``aiokafka``: the same pass-through on the bare engine beneath Faust (batched ``getmany``,
  sends not awaited one by one, one ``flush`` per batch);
- ``naive``: the per-event loop a user would write first: a kafka-python consumer, one
  Redis ``HGETALL`` of the customer's bureau hash and one model call per event, one result
  produced per event.

Every kind writes exactly one output message per input message, so the benchmark times them
all the same way (first to last output message). They run until stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence

from config.kafka_auth import aiokafka_options, faust_broker_options, kafka_python_options
from config.settings import Settings, get_settings

BATCH_EVENTS = 200
BATCH_WITHIN_S = 0.2
COMMIT_INTERVAL_S = 1.0  # as the worker's broker_commit_interval


def run_faust_passthrough(settings: Settings, source: str, sink: str, group: str, port: int) -> None:
    import faust

    datadir = settings.stack_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(group, **faust_broker_options(settings, "worker"), topic_allow_declare=False,
                    value_serializer="raw", key_serializer="raw",
                    processing_guarantee="at_least_once", consumer_auto_offset_reset="earliest",
                    web_port=port, web_bind="127.0.0.1", web_host="127.0.0.1",
                    datadir=str(datadir), broker_commit_interval=COMMIT_INTERVAL_S)
    source_topic = app.topic(source, value_serializer="raw", key_serializer="raw")
    sink_topic = app.topic(sink, value_serializer="raw", key_serializer="raw")

    @app.agent(source_topic, name="pass-through")
    async def forward(stream: faust.StreamT) -> None:
        assert isinstance(stream, faust.Stream)  # the StreamT protocol omits take_events
        async for events in stream.take_events(BATCH_EVENTS, within=BATCH_WITHIN_S):
            deliveries = [await sink_topic.send(key=event.message.key, value=event.value)
                          for event in events]
            await asyncio.gather(*deliveries)

    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


async def run_aiokafka_passthrough(settings: Settings, source: str, sink: str, group: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(source, **aiokafka_options(settings, "worker"), group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    producer = AIOKafkaProducer(**aiokafka_options(settings, "worker"), acks="all",
                                enable_idempotence=True)
    await consumer.start()
    await producer.start()
    last_commit = time.monotonic()
    try:
        while True:
            fetched = await consumer.getmany(timeout_ms=int(BATCH_WITHIN_S * 1000),
                                             max_records=BATCH_EVENTS)
            for records in fetched.values():
                for record in records:
                    await producer.send(sink, value=record.value, key=record.key)
            await producer.flush()
            if fetched and time.monotonic() - last_commit >= COMMIT_INTERVAL_S:
                await consumer.commit()
                last_commit = time.monotonic()
    finally:
        await consumer.stop()
        await producer.stop()


def run_naive_loop(settings: Settings, source: str, sink: str, group: str,
                   limit: int | None = None) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    from features.store import as_text, sync_client
    from features.views import feature_key
    from onnx_models.registry import Registry

    registry = Registry(settings.registry_dir)
    model = registry.load(registry.live_version() or "")
    session, encoder = model.session(), model.encoder()
    serving = model.card.serving_spec()
    redis = sync_client(settings, "worker")  # reads the views as the worker does
    consumer = KafkaConsumer(source, **kafka_python_options(settings, "worker"), group_id=group,
                             auto_offset_reset="earliest")
    producer = KafkaProducer(**kafka_python_options(settings, "worker"), acks="all",
                             enable_idempotence=True)
    for handled, message in enumerate(consumer, start=1):
        try:
            event = json.loads(message.value)
            record = dict(event)
            for view in serving.views:
                stored = redis.hgetall(feature_key(view, str(event["customer_id"]),
                                                   settings.feature_schema_version, settings.key_prefix))
                record.update({as_text(name): _stored_value(as_text(value))
                               for name, value in stored.items()})
            if serving.date_field:
                record[serving.date_field] = event["submitted_at"]
            probability = model.probability_of_default(encoder.transform_records([record]), session)
            result = {"application_id": event.get("application_id"),
                      "probability_of_default": float(probability[0]),
                      "submitted_at": event.get("submitted_at")}
        except Exception as error:  # noqa: BLE001 - a bad event is reported, never fatal
            result = {"error": type(error).__name__}
        producer.send(sink, key=message.key, value=json.dumps(result).encode())
        if limit is not None and handled >= limit:
            producer.flush()
            break


def _stored_value(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text  # dates and timestamps


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=("faust", "aiokafka", "naive"))
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--port", type=int, default=6099, help="faust only: its web port")
    parser.add_argument("--limit", type=int, default=None,
                        help="naive only: stop after this many events")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.kind == "faust":
        import sys

        sys.argv = sys.argv[:1]  # Faust's worker reads the command line too
        run_faust_passthrough(settings, args.input, args.output, args.group, args.port)
    elif args.kind == "aiokafka":
        asyncio.run(run_aiokafka_passthrough(settings, args.input, args.output, args.group))
    else:
        run_naive_loop(settings, args.input, args.output, args.group, args.limit)


if __name__ == "__main__":
    main()
