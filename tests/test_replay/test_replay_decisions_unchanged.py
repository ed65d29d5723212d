"""A replay is decided the same through the worker's fast path as through the reference
path it replaced: events validated, enriched from the real Redis, then model inputs built
with numpy from the records (the worker) or with pandas from a frame (the reference, the
training code); every verdict — PD, score, grade, decision, reasons — must be identical."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.integration


def test_a_replay_gets_the_same_decisions_on_the_fast_path(
        namespace, generated_data: Path, trained_registry_template: Path) -> None:
    from features.materialize import materialize_bureau_features
    from features.online import FeatureRequest, OnlineFeatureReader
    from features.records import records_matrix
    from features.store import async_client, sync_client
    from onnx_models.registry import Registry
    from replay.core import application_event, encode_event, read_loan_rows
    from stream.model_runtime import LoadedModel
    from stream.validation import ValidApplication, validate_application

    settings = namespace.settings
    registry = Registry(trained_registry_template)
    model = LoadedModel.load(registry.load(registry.live_version() or ""))
    client = sync_client(settings, "materializer")
    materialize_bureau_features(generated_data / "bureau.csv", client,
                                settings.feature_schema_version, settings.key_prefix,
                                as_of=datetime.now(UTC))
    client.close()
    from replay.core import EventLayout

    layout = EventLayout.from_card(model.card)
    rows = itertools.islice(read_loan_rows(generated_data / "loans.csv", layout), 3000)
    valid = [result for result in (validate_application(encode_event(application_event(row, layout))[1],
                                                        model.event_schema) for row in rows)
             if isinstance(result, ValidApplication)]
    assert len(valid) > 2500

    async def enrich() -> list[dict]:
        redis = async_client(settings, "worker")
        try:
            reader = OnlineFeatureReader(redis, settings.feature_schema_version,
                                         settings.key_prefix)
            batch = await reader.read([FeatureRequest(app.application_id, app.customer_id,
                                                      app.submitted_at, app.application)
                                       for app in valid], record_velocity=False,
                                      serving=model.serving)
            return [(item.record, item.incomplete) for item in batch.features]
        finally:
            await redis.aclose()

    enriched = asyncio.run(enrich())
    records = [record for record, _ in enriched]
    incomplete = [flag for _, flag in enriched]
    fast = records_matrix(model.encoder, records)
    assert fast is not None  # the worker's records take the fast path
    reference = model.encoder.transform(pd.DataFrame.from_records(records))
    assert model.score(fast, incomplete) == model.score(reference, incomplete)
    decided = {verdict.decision for verdict in model.score(fast, incomplete)}
    assert decided == {"approve", "review", "decline"}
