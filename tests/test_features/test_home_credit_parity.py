"""No training/serving skew for Home Credit: the rows training builds (clean, join the bureau
view, encode) equal, float32 for float32, the rows the worker builds (the view materialized
into the real Redis, the application event validated against the model's serving spec, one
online read, the same encoder) — applicants without any bureau credit included."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from features.materialize import materialize_view
from features.metrics import FeatureStoreMetrics
from features.online import FeatureRequest, OnlineFeatureReader
from features.serving import SourceColumns
from features.store import async_client, sync_client
from replay.core import EventLayout, application_event, read_loan_rows
from stream.event_schema import EventSchema
from stream.validation import ValidApplication, validate_application

pytestmark = pytest.mark.integration

APPLICANTS = 3_000


def _online_rows(namespace, spec, events: list[bytes], encoder) -> tuple[np.ndarray, list]:
    schema = EventSchema.from_spec(spec)
    requests = []
    for payload in events:
        valid = validate_application(payload, schema)
        assert isinstance(valid, ValidApplication), valid
        requests.append(FeatureRequest(valid.application_id, valid.customer_id,
                                       valid.submitted_at, valid.application))

    async def read_all() -> list:
        client = async_client(namespace.settings, "worker")
        reader = OnlineFeatureReader(client, namespace.settings.feature_schema_version,
                                     namespace.settings.key_prefix,
                                     metrics=FeatureStoreMetrics(CollectorRegistry()))
        try:
            found = []
            for start in range(0, len(requests), 500):
                batch = await reader.read(requests[start:start + 500], serving=spec)
                found += batch.features
            return found
        finally:
            await client.aclose()

    features = asyncio.run(read_all())
    return encoder.transform_records([item.record for item in features]), features


def test_home_credit_online_rows_equal_training_rows(namespace, tmp_path: Path) -> None:
    from training.datasets import load_clean_labelled, load_dataset_config
    from training.generate_home_credit import generate_home_credit_files
    from training.pipeline import checked_encoder
    from training.training_config import TrainingConfig

    generate_home_credit_files(rows=APPLICANTS, seed=17, out_dir=tmp_path, show_progress=False)
    config = load_dataset_config("home_credit")
    spec = config.serving_spec()
    frame, _cleaning, _labels = load_clean_labelled(tmp_path / "application_train.csv", config)
    encoder = checked_encoder(config, TrainingConfig(min_category_count=5)).fit(frame)
    offline = encoder.transform(frame)

    client = sync_client(namespace.settings, "materializer")
    try:
        (view,) = spec.views
        report = materialize_view(tmp_path / "bureau.csv", client, view,
                                  namespace.settings.feature_schema_version,
                                  namespace.settings.key_prefix)
    finally:
        client.close()
    with_bureau = int(frame["BUREAU_CREDITS"].notna().sum())
    assert report.written == with_bureau and not report.malformed

    layout = EventLayout(spec.event_fields, SourceColumns("SK_ID_CURR", "SK_ID_CURR"))
    events = [json.dumps(application_event(row, layout)).encode()
              for row in read_loan_rows(tmp_path / "application_train.csv", layout)]
    online, features = _online_rows(namespace, spec, events, encoder)

    assert online.dtype == np.float32 and online.shape == offline.shape == (
        APPLICANTS, len(config.model_features))
    np.testing.assert_array_equal(online, offline)  # NaN in the same places, values bit-equal

    no_bureau = frame["BUREAU_CREDITS"].isna().to_numpy()
    assert 200 < no_bureau.sum() < APPLICANTS - with_bureau + 1
    assert all(not features[i].views_found for i in np.flatnonzero(no_bureau))
    assert all(features[i].views_found for i in np.flatnonzero(~no_bureau))
    bureau_columns = [i for i, spec_ in enumerate(encoder.feature_specs_)
                      if spec_.name.startswith("BUREAU_")]
    assert np.isnan(online[no_bureau][:, bureau_columns]).all()
    assert not np.isnan(online[~no_bureau][:, bureau_columns[0]]).any()
