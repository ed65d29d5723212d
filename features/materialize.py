"""Materialization: an offline table -> a feature view in Redis.

A view with one row per entity (the Lending Club ``bureau`` view) is read in chunks from the
generated ``bureau.csv`` (``customer_id``, fields, ``as_of``) or from the bureau columns of a
Lending Club loan file (keyed by ``member_id``, true as of ``issue_d``), validating every row.
A view of aggregations (e.g. Home Credit's ``bureau.csv``, many credits per applicant) is
computed by ``features.views.aggregate_view`` — the code training joins with — and written
one entity per row. A row with any malformed value is counted with its reason and not
written at all; a row older than what Redis holds is left alone (write-if-newer), so a
re-run is idempotent. Writes go in pipelines of ``batch_size`` rows; on a Redis Cluster each
pipeline is split by the client into one round trip per node.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import redis.cluster
from redis.exceptions import NoScriptError

from features.normalize import PLACEHOLDER_TOKENS, parse_percent
from features.store import TIMESTAMP_FORMAT, WRITE_IF_NEWER, SyncRedis, encode_column, format_timestamp
from features.views import (
    BUREAU_VIEW,
    HASH_TAGGED_SCHEMAS,
    VELOCITY_VIEW,
    FeatureView,
    aggregate_view,
    feature_key,
    view_key_prefix,
)

LC_MONTH_FORMAT = "%b-%Y"


@dataclass
class MaterializeReport:
    rows_read: int = 0
    written: int = 0
    kept_newer: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        lines = [
            f"rows read: {self.rows_read:,}",
            f"written: {self.written:,}",
            f"left alone (Redis holds newer values): {self.kept_newer:,}",
            f"malformed (not written): {sum(self.malformed.values()):,}",
        ]
        lines += [f"  {reason}: {count:,}" for reason, count in sorted(self.malformed.items())]
        lines.append(f"time: {self.seconds:.1f}s ({self.rows_per_second:,.0f} rows/s)")
        return "\n".join(lines)


@dataclass
class BureauRow:
    """One valid row, encoded for the write script."""

    customer_id: str
    event_ts: str
    pairs: list[str]


def materialize_bureau_features(
    path: Path, client: SyncRedis, schema_version: str = "v1", key_prefix: str = "",
    batch_size: int = 2000, view: FeatureView = BUREAU_VIEW,
    on_progress: Callable[[int], None] | None = None, as_of: datetime | None = None,
) -> MaterializeReport:
    """Load a bureau table (or a Lending Club loan file) into Redis, in pipelined batches.

    ``as_of`` stamps every row as true at that moment instead of the file's own dates (a
    bureau pull loaded as of the pull time, e.g. a historical file replayed today).
    """
    report = MaterializeReport()
    started = time.perf_counter()
    for raw_chunk in _read_chunks(path, batch_size, view):
        chunk = raw_chunk if as_of is None else raw_chunk.assign(as_of=format_timestamp(as_of))
        rows = list(_valid_rows(chunk, view, report.malformed))
        report.rows_read += len(chunk)
        _write_rows(client, view, rows, schema_version, key_prefix, batch_size, report, None)
        if on_progress is not None:
            on_progress(len(chunk))
    report.seconds = time.perf_counter() - started
    return report


def materialize_view(
    path: Path, client: SyncRedis, view: FeatureView, schema_version: str = "v1",
    key_prefix: str = "", batch_size: int = 2000,
    on_progress: Callable[[int], None] | None = None, as_of: datetime | None = None,
) -> MaterializeReport:
    """Load one declared view from its source table. Values are true as of ``as_of``, else
    the latest ``event_time_column`` date of the entity's rows, else now."""
    if not view.aggregations:
        return materialize_bureau_features(path, client, schema_version, key_prefix, batch_size,
                                           view, on_progress, as_of)
    if not path.is_file():
        raise FileNotFoundError(f"no table at {path} for view {view.name!r}")
    started = time.perf_counter()
    table = pd.read_csv(path, low_memory=False)
    report = MaterializeReport(rows_read=len(table))
    values = aggregate_view(table, view)
    values = values.assign(as_of=_event_times(table, view, values.index, as_of))
    values.index.name = "customer_id"
    chunk = values.reset_index().astype(str).replace({"nan": "", "NaT": ""})
    rows = list(_valid_rows(chunk, view, report.malformed))
    _write_rows(client, view, rows, schema_version, key_prefix, batch_size, report, on_progress)
    report.seconds = time.perf_counter() - started
    return report


def materialize_as_of_applications(
    applications: pd.DataFrame, client: SyncRedis, view: FeatureView = BUREAU_VIEW,
    date_column: str = "issue_d", entity_column: str = "customer_id", schema_version: str = "v1",
    key_prefix: str = "", batch_size: int = 2000,
) -> MaterializeReport:
    """The view's values each application row holds (a cleaned loan file's own bureau
    columns), each true as of its application's date: the point-in-time values training saw,
    so that applications replayed with their own dates are enriched exactly as the offline
    rows were. A customer with several applications keeps the latest (write-if-newer)."""
    started = time.perf_counter()
    dated = applications[applications[date_column].notna()].sort_values(date_column, kind="stable")
    chunk = pd.DataFrame({"customer_id": dated[entity_column].astype(str)}, index=dated.index)
    for spec in view.fields:
        values = dated[spec.name] if spec.name in dated.columns else pd.Series(index=dated.index)
        if spec.kind == "date":
            text = pd.to_datetime(values, errors="coerce").dt.strftime("%Y-%m-%d")
        else:
            text = pd.to_numeric(values, errors="coerce").astype("float64").map(repr, na_action="ignore")
        chunk[spec.name] = text.fillna("")
    chunk["as_of"] = pd.to_datetime(dated[date_column], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    report = MaterializeReport(rows_read=len(applications))
    rows = list(_valid_rows(chunk, view, report.malformed))
    _write_rows(client, view, rows, schema_version, key_prefix, batch_size, report, None)
    report.seconds = time.perf_counter() - started
    return report


def _event_times(table: pd.DataFrame, view: FeatureView, entities: pd.Index,
                 as_of: datetime | None) -> list[str]:
    if as_of is None and view.event_time_column:
        dates = pd.to_datetime(table[view.event_time_column], errors="coerce", utc=True)
        latest = dates.groupby(table[view.entity_column].astype(str).str.strip()).max()
        return [format_timestamp(moment) if not pd.isna(moment) else ""
                for moment in latest.reindex(entities)]
    return [format_timestamp(as_of or datetime.now(UTC))] * len(entities)


def _write_rows(client: SyncRedis, view: FeatureView, rows: list[BureauRow],
                schema_version: str, key_prefix: str, batch_size: int, report: MaterializeReport,
                on_progress: Callable[[int], None] | None) -> None:
    if not rows:
        return
    script_sha = client.script_load(WRITE_IF_NEWER)
    ttl_seconds = int(view.ttl.total_seconds())
    for start in range(0, len(rows), max(batch_size, 1)):
        batch = rows[start:start + batch_size]
        written_ts = format_timestamp(datetime.now(UTC))
        keys = [feature_key(view, row.customer_id, schema_version, key_prefix) for row in batch]
        try:
            results = _write_batch(client, script_sha, keys, batch, written_ts, ttl_seconds)
        except NoScriptError:  # a restart or a failover lost the script: load it, write again
            script_sha = client.script_load(WRITE_IF_NEWER)  # (write-if-newer: no harm)
            results = _write_batch(client, script_sha, keys, batch, written_ts, ttl_seconds)
        report.written += sum(1 for result in results if result == 1)
        report.kept_newer += sum(1 for result in results if result == 0)
        if on_progress is not None:
            on_progress(len(batch))


def _write_batch(client: SyncRedis, script_sha: str, keys: list[str], batch: list[BureauRow],
                 written_ts: str, ttl_seconds: int) -> list[object]:
    """One pipeline of write-if-newer calls (split by node on a cluster); 1 written, 0 kept."""
    pipe = client.pipeline(transaction=False)
    for key, row in zip(keys, batch, strict=True):
        # execute_command: a cluster pipeline refuses evalsha() by name, not the command.
        pipe.execute_command("EVALSHA", script_sha, 1, key, row.event_ts, written_ts, ttl_seconds,
                             *row.pairs, **_node_of(client, key))
    results: list[object] = pipe.execute()
    return results


def _node_of(client: SyncRedis, key: str) -> dict[str, object]:
    """On a cluster, the node of ``key``'s slot, named for the pipeline: without it the blocking
    cluster pipeline asks a server for the keys of every EVALSHA (COMMAND GETKEYS), one round
    trip per row, four times slower. A MOVED answer still sends the call where it belongs."""
    if isinstance(client, redis.cluster.RedisCluster):
        return {"target_nodes": client.get_node_from_key(key)}
    return {}


def count_rows(path: Path) -> int:
    """Data rows of a CSV file (for the progress bar)."""
    with path.open("rb") as handle:
        return max(sum(buffer.count(b"\n") for buffer in iter(lambda: handle.read(1 << 20), b"")) - 1, 0)


def _read_chunks(path: Path, batch_size: int, view: FeatureView) -> Iterator[pd.DataFrame]:
    if not path.is_file():
        raise FileNotFoundError(f"no bureau file at {path}: give the bureau.csv written by "
                                "`creditrisk data generate` or a Lending Club loan file")
    header = pd.read_csv(path, nrows=0).columns
    if view.entity_column in header:
        def convert(chunk: pd.DataFrame) -> pd.DataFrame:  # the table's names, the view's terms
            renamed = {view.entity_column: "customer_id"}
            if view.event_time_column:
                renamed[view.event_time_column] = "as_of"
            return chunk.rename(columns=renamed)
    elif "member_id" in header:
        convert = _lending_club_chunk
    else:
        raise ValueError(f"{path} has neither a customer_id column (bureau table) nor a "
                         "member_id column (Lending Club loan file)")
    reader = pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=batch_size)
    for chunk in reader:
        yield convert(chunk)


def _lending_club_chunk(chunk: pd.DataFrame) -> pd.DataFrame:
    """The bureau columns of a Lending Club loan file, in the bureau table's terms."""
    frame = pd.DataFrame(index=chunk.index)
    frame["customer_id"] = chunk["member_id"]
    for name in BUREAU_VIEW.field_names:
        if name in chunk.columns:
            frame[name] = chunk[name]
    frame["earliest_cr_line"] = _lc_month(_text_column(chunk, "earliest_cr_line"))
    frame["revol_util"] = _text_column(chunk, "revol_util").map(
        lambda text: "" if parse_percent(text) is None else repr(parse_percent(text)))
    dti = pd.to_numeric(_text_column(chunk, "dti"), errors="coerce")
    income = pd.to_numeric(_text_column(chunk, "annual_inc"), errors="coerce")
    frame["monthly_debt"] = (dti * income / 1200.0).map(lambda v: "" if pd.isna(v) else repr(v))
    frame["as_of"] = _lc_month(_text_column(chunk, "issue_d")).map(lambda d: d and d + "T00:00:00Z")
    return frame


def _text_column(chunk: pd.DataFrame, name: str) -> pd.Series:
    """A column of the text file, or empty text (missing values) where the file has none."""
    return chunk[name] if name in chunk.columns else pd.Series("", index=chunk.index)


def _lc_month(values: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(values.str.strip(), format=LC_MONTH_FORMAT, errors="coerce")
    two_digit = pd.to_datetime(values.str.strip(), format="%b-%y", errors="coerce")
    parsed = parsed.fillna(two_digit)
    return parsed.dt.strftime("%Y-%m-%d").fillna("")


def _valid_rows(chunk: pd.DataFrame, view: FeatureView, malformed: Counter[str]) -> Iterator[BureauRow]:
    """Rows whose every value parses, already encoded; the others are counted by reason."""
    encoded: dict[str, list[str | None]] = {}
    bad = pd.Series("", index=chunk.index)
    for spec in view.fields:
        text = _text_column(chunk, spec.name)
        absent = _absent(text)
        values: pd.Series
        if spec.kind == "date":
            values = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
        else:
            numbers = pd.to_numeric(text, errors="coerce").astype("float64")
            # Bureau counts, balances and ratios are finite and never negative; an aggregate
            # is written as aggregate_view computed it for training (e.g. the latest of
            # negative day offsets), so only a non-finite one is malformed.
            allowed = np.isfinite(numbers) & ((numbers >= 0) | bool(view.aggregations))
            values = numbers.where(allowed)
        bad = bad.mask((bad == "") & ~absent & values.isna(), f"bad_{spec.name}")
        encoded[spec.name] = encode_column(values, spec.kind)
    as_of = pd.to_datetime(_text_column(chunk, "as_of"), utc=True, errors="coerce")
    bad = bad.mask((bad == "") & as_of.isna(), "bad_as_of")
    customer = chunk["customer_id"].str.strip()
    bad = bad.mask(customer.map(_bad_entity_id), "bad_customer_id")

    for reason, count in bad[bad != ""].value_counts().items():
        malformed[str(reason)] += int(count)
    event_ts = as_of.dt.strftime(TIMESTAMP_FORMAT).tolist()
    names = list(encoded)
    columns = [encoded[name] for name in names]
    for i, (customer_id, is_good) in enumerate(zip(customer.tolist(), (bad == "").tolist(), strict=True)):
        if not is_good:
            continue
        pairs: list[str] = []
        for name, column in zip(names, columns, strict=True):
            value = column[i]
            if value is not None:
                pairs += (name, value)
        yield BureauRow(customer_id, event_ts[i], pairs)


def _absent(text: pd.Series) -> pd.Series:
    """Empty cells and placeholders ('n/a', 'NULL', ...) are missing values, not errors."""
    folded = text.str.strip().str.lower()
    return (folded == "") | folded.isin(PLACEHOLDER_TOKENS)


def _bad_entity_id(value: str) -> bool:
    return not value or ":" in value or any(c.isspace() for c in value)


@dataclass
class VelocityCopyReport:
    customers: int = 0
    applications: int = 0
    # customer ids the target schema cannot hold (a brace in a v1 id: not a v2 hash tag)
    skipped: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"velocity sets copied: {self.customers:,} customers, {self.applications:,} "
                f"applications, {self.skipped:,} ids the target schema cannot hold, in "
                f"{self.seconds:.1f}s")


def copy_velocity(source: SyncRedis, target: SyncRedis, source_version: str, target_version: str,
                  key_prefix: str = "", batch_size: int = 1000) -> VelocityCopyReport:
    """Add every customer's recent applications of ``source_version``'s velocity view into
    ``target_version``'s (on the same Redis or another one, e.g. a new Redis Cluster).

    The worker writes the velocity view itself, so a key-schema migration cannot materialize
    it from a file: without this copy, the counts of the new schema would start at zero and
    undercount a customer's applications for up to a week. A union (ZADD) of application ids,
    so it is idempotent and safe to run while a worker writes either schema: run it before
    switching the worker, and again right after. A copied set keeps the longer of the two
    remaining lifetimes."""
    report = VelocityCopyReport()
    started = time.perf_counter()
    source_prefix = view_key_prefix(VELOCITY_VIEW, source_version, key_prefix)
    batch: list[str] = []
    for raw in source.scan_iter(match=f"{source_prefix}*", count=batch_size):
        batch.append(raw.decode() if isinstance(raw, bytes) else str(raw))
        if len(batch) >= batch_size:
            _copy_velocity_batch(source, target, batch, source_version, target_version,
                                 key_prefix, report)
            batch = []
    if batch:
        _copy_velocity_batch(source, target, batch, source_version, target_version, key_prefix,
                             report)
    report.seconds = time.perf_counter() - started
    return report


def _copy_velocity_batch(source: SyncRedis, target: SyncRedis, keys: list[str],
                         source_version: str, target_version: str, key_prefix: str,
                         report: VelocityCopyReport) -> None:
    source_prefix = view_key_prefix(VELOCITY_VIEW, source_version, key_prefix)
    tagged = source_version in HASH_TAGGED_SCHEMAS
    pairs = [(key, _velocity_target(key[len(source_prefix):], tagged, target_version, key_prefix))
             for key in keys]
    report.skipped += sum(1 for _, target_key in pairs if target_key is None)
    keys = [key for key, target_key in pairs if target_key is not None]
    targets = [target_key for _, target_key in pairs if target_key is not None]
    read = source.pipeline(transaction=False)
    for key in keys:
        read.zrange(key, 0, -1, withscores=True)
        read.pttl(key)
    replies = read.execute()
    lifetimes = target.pipeline(transaction=False)
    for key in targets:
        lifetimes.pttl(key)
    target_ttls = lifetimes.execute()
    write = target.pipeline(transaction=False)
    for index, key in enumerate(targets):
        members, source_ttl = replies[2 * index], replies[2 * index + 1]
        if not members or source_ttl <= 0:  # gone meanwhile, or no lifetime (not ours)
            continue
        write.zadd(key, dict(members))
        write.pexpire(key, max(int(source_ttl), int(target_ttls[index])))
        report.customers += 1
        report.applications += len(members)
    write.execute()


def _velocity_target(entity_part: str, tagged: bool, target_version: str, key_prefix: str,
                     ) -> str | None:
    """The target key of a source key's entity part (``id``, or ``{id}`` when ``tagged``);
    None when the target schema cannot hold that id."""
    entity = entity_part[1:-1] if tagged else entity_part
    try:
        return feature_key(VELOCITY_VIEW, entity, target_version, key_prefix)
    except ValueError:
        return None
