"""What the console reads and computes: decision records (Redis), the live model card (registry),
scoring a typed-in application (the worker's ``POST /score``), and the pure functions the
views call (tables, filters, percentiles, similar groups, form checks).

The app takes a :class:`DataSource` from ``st.session_state["data_source"]`` when one is
there (tests put an in-memory one) and otherwise builds :class:`RedisDataSource`.
Every failure a user can meet is a :class:`ConsoleUnavailable` whose text says what is
down and what to do; the views show it, never a stack trace.
"""

from __future__ import annotations

import json
import logging
import math
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

import numpy as np
import pandas as pd
from pydantic import SecretStr

from config.json_types import JSONObject
from config.settings import Settings
from console.card import CompareFeature, ConsoleCard, FormField, SimilarGroup
from console.find import PAGE_SIZE, DecisionFilters, DecisionPage, find_in_ledger, find_in_records
from console.records import (
    Parsed,
    SimilarCustomer,
    UnreadableRecord,
    parse_each,
    unreadable_record_text,
)
from features.normalize import utc_timestamp
from features.store import (
    REFUSED_ERRORS,
    SyncRedis,
    as_text,
    get_many_blocking,
    refusal_in,
    refused_user,
)
from ledger.backtest import VersionBacktest
from ledger.cards import RegistryCards
from ledger.rows import latest_record
from onnx_models.card import CardFeature, ModelCard
from onnx_models.policy import ScoreScale, score_points
from stream.decisions import (
    Decision,
    DecisionError,
    DecisionRecord,
    decision_key,
    recent_decisions_key,
)
from stream.http_auth import bearer_header
from stream.model_runtime import LoadedModel
from stream.reasons import MAX_REASONS, ReasonBuilder

if TYPE_CHECKING:
    from psycopg import Connection

log = logging.getLogger("creditrisk.console")
T = TypeVar("T")

CUSTOMER_LIMIT = 200
RECENT_LIMIT = 500
# Below this many similar customers a distribution says more about chance than the group.
MIN_GROUP_SIZE = 10
REQUEST_TIMEOUT_S = 5.0
QUANTILE_LEVELS = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)

SIMILAR_GROUP_DEFINITION = (
    "Similar customers: {definition}, among every decision in the ledger (the {count} most "
    "recent of them compared).")
SIMILAR_FALLBACK_DEFINITION = (
    "Similar customers: {definition}, among the {count} most recent decisions kept in Redis "
    "(the decision ledger does not answer, so older decisions are not searched).")
SIMILAR_LIMIT = 5_000


class ConsoleUnavailable(RuntimeError):
    """Something the console needs is down or missing; the text says what to do."""


@dataclass(frozen=True)
class SimilarCustomers:
    """The similar group's decisions and the sentence saying where they come from."""

    records: list[SimilarCustomer]
    definition: str
    unreadable: int = 0  # stored records that did not parse, left out of the group


@dataclass(frozen=True)
class ScoreOutcome:
    """What the worker said about a typed-in application."""

    kind: Literal["decided", "rejected", "unavailable"]
    decision: Decision | None = None  # when decided
    detail: str = ""


class DataSource(Protocol):
    """Where the console reads from; the app uses Redis + registry + worker, tests a fake."""

    def model_card(self) -> ModelCard: ...

    def served_model(self, version: str) -> LoadedModel | None:
        """The version as the worker serves it (encoder, ONNX model, explainer); None when
        its files cannot be loaded."""
        ...

    def recent_records(self, limit: int = RECENT_LIMIT) -> Parsed[DecisionRecord]: ...

    def record(self, application_id: str) -> DecisionRecord | None:
        """None when never decided; :class:`UnreadableRecord` when stored but unreadable."""
        ...

    def customer_application_ids(self, customer_id: str) -> Parsed[str]: ...

    def score(self, event: JSONObject) -> ScoreOutcome: ...

    def similar(self, card: ConsoleCard, group: SimilarGroup,
                exclude_application: str | None) -> SimilarCustomers: ...

    def find(self, card: ConsoleCard, filters: DecisionFilters, limit: int = PAGE_SIZE,
             offset: int = 0) -> DecisionPage: ...

    def backtest(self) -> list[VersionBacktest]: ...


def worker_url(settings: Settings) -> str:
    """``CREDITRISK_WORKER_URL``, else the local worker's port."""
    return (settings.worker_url or f"http://127.0.0.1:{settings.worker_port}").rstrip("/")


class RedisDataSource:
    """Decision records from Redis, the live card from the registry, scoring by the worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.prefix = settings.key_prefix
        # A cluster client finds its nodes when it is made: made on first use, inside _redis,
        # so that a Redis Cluster down or refusing us is a page's message, not a crash.
        self._client: SyncRedis | None = None
        self.worker = worker_url(settings)
        self._cards: dict[str, ModelCard] = {}
        self._models: dict[str, LoadedModel] = {}

    # -- registry ---------------------------------------------------------------------
    def model_card(self) -> ModelCard:
        """The live card; checked (ONNX included) once per version, then kept."""
        from onnx_models.registry import Registry, RegistryError

        registry = Registry(self.settings.registry_dir)
        try:
            version = registry.live_version()
            if version and version not in self._cards:
                self._cards[version] = registry.load(version).card
        except RegistryError as error:
            raise ConsoleUnavailable(f"The live model cannot be read: {error}") from None
        if not version:
            raise ConsoleUnavailable(
                f"No model is live in {self.settings.registry_dir}. Train one with "
                "`creditrisk train --data PATH` (or promote one with `creditrisk model "
                "promote VERSION`), then reload this page.")
        return self._cards[version]

    def served_model(self, version: str) -> LoadedModel | None:
        """The version loaded as the worker loads it, once per version."""
        from onnx_models.registry import Registry, RegistryError

        if version not in self._models:
            try:
                registered = Registry(self.settings.registry_dir).load(version)
                self._models[version] = LoadedModel.load(registered)
            except (RegistryError, OSError) as error:
                log.warning("model %s cannot explain decisions: %s", version, error)
                return None
        return self._models[version]

    # -- Redis ------------------------------------------------------------------------
    @property
    def client(self) -> SyncRedis:
        """The console's Redis client (its role's ACL user), made on first use."""
        if self._client is None:
            from features.store import sync_client

            self._client = sync_client(self.settings, "console")
        return self._client

    def _redis(self, call: Callable[[], T]) -> T:
        from redis.exceptions import RedisClusterException, RedisError

        try:
            return call()
        except (*REFUSED_ERRORS, RedisError, RedisClusterException) as error:
            refusal = refusal_in(error)  # a cluster client's "cannot connect" may be a refusal
            if refusal is not None:
                user, _ = self.settings.redis_credentials("console")
                raise ConsoleUnavailable(f"{refused_user(refusal, user)}. Then reload this "
                                         "page.") from None
            raise ConsoleUnavailable(
                f"Redis at {self.settings.redis_address} does not answer, so decisions "
                "cannot be read. Start the stack with `creditrisk stack up` (or check "
                "CREDITRISK_REDIS_URL), then reload this page.") from None

    def recent_records(self, limit: int = RECENT_LIMIT) -> Parsed[DecisionRecord]:
        ids = self._redis(lambda: self.client.zrevrange(recent_decisions_key(self.prefix),
                                                        0, limit - 1))
        return self._records([as_text(item) for item in ids if isinstance(item, bytes | str)])

    def _records(self, application_ids: list[str]) -> Parsed[DecisionRecord]:
        if not application_ids:
            return Parsed()
        keys = [decision_key(self.prefix, app_id) for app_id in application_ids]
        # one MGET on a single Redis; one per slot, pipelined to every node, on a cluster
        raw = self._redis(lambda: get_many_blocking(self.client, keys))
        return parse_each((item for item in raw if item is not None), DecisionRecord.from_json,
                          "Redis")

    def record(self, application_id: str) -> DecisionRecord | None:
        """The worker's record in Redis (90 days), else the application's latest decision in
        the ledger (kept as long as retention says); :class:`UnreadableRecord` when it is
        stored but neither copy parses."""
        raw = self._redis(lambda: self.client.get(decision_key(self.prefix, application_id)))
        problem: DecisionError | None = None
        if raw is not None:
            try:
                return DecisionRecord.from_json(raw)
            except DecisionError as error:  # the ledger keeps the same decision
                log.warning("unreadable decision record of %s in Redis: %s", application_id, error)
                problem = error
        found: DecisionRecord | None = None
        try:
            found = self._ledger(lambda connection: latest_record(connection, application_id))
        except ConsoleUnavailable:
            pass
        except DecisionError as error:
            log.warning("unreadable decision of %s in the ledger: %s", application_id, error)
            problem = error
        if found is None and problem is not None:
            raise UnreadableRecord(unreadable_record_text(application_id, problem))
        return found

    def customer_application_ids(self, customer_id: str) -> Parsed[str]:
        """The customer's applications, newest first, from the ledger (every decision kept);
        among the recent decisions in Redis when the ledger does not answer."""
        try:
            rows = self._ledger(lambda connection: connection.execute(
                "SELECT application_id FROM decisions WHERE customer_id = %s "
                "ORDER BY decided_at DESC LIMIT %s", (customer_id, CUSTOMER_LIMIT)).fetchall())
        except ConsoleUnavailable:
            recent = self.recent_records(RECENT_LIMIT)
            return Parsed([record.decision.application_id for record in recent.items
                           if record.decision.customer_id == customer_id], recent.unreadable)
        return Parsed([str(application_id) for (application_id,) in rows])

    # -- worker -----------------------------------------------------------------------
    def score(self, event: JSONObject) -> ScoreOutcome:
        return post_score(self.worker, event, self.settings.api_token)

    # -- the decision ledger (PostgreSQL) ----------------------------------------------
    def _ledger(self, query: Callable[[Connection], T]) -> T:
        import psycopg

        try:
            with psycopg.connect(self.settings.console_postgres_conninfo(),
                                 connect_timeout=3) as connection:
                return query(connection)
        except psycopg.OperationalError:
            raise ConsoleUnavailable(
                f"The decision ledger (PostgreSQL at {self.settings.postgres_host}:"
                f"{self.settings.postgres_port}) does not answer. Start the stack with "
                "`creditrisk stack up` and the writer with `creditrisk ledger run`, then reload "
                "this page.") from None

    def similar(self, card: ConsoleCard, group: SimilarGroup,
                exclude_application: str | None) -> SimilarCustomers:
        """Decisions in the customer's group, newest first, from every decision in the ledger
        (the stored application matched by JSONB containment, GIN-indexed); the recent
        decisions in Redis when the ledger does not answer."""
        definition = card.group_definition()
        if not group.complete:
            return SimilarCustomers([], SIMILAR_GROUP_DEFINITION.format(
                definition=definition, count=f"{SIMILAR_LIMIT:,}"))
        try:
            found = self._ledger(lambda connection: similar_from_ledger(
                connection, group, exclude_application, SIMILAR_LIMIT))
        except ConsoleUnavailable:
            recent = self.recent_records(RECENT_LIMIT)
            return SimilarCustomers(
                similar_records(recent.items, card, group, exclude_application),
                SIMILAR_FALLBACK_DEFINITION.format(definition=definition, count=len(recent.items)),
                recent.unreadable)
        return SimilarCustomers(found.items, SIMILAR_GROUP_DEFINITION.format(
            definition=definition, count=f"{SIMILAR_LIMIT:,}"), found.unreadable)

    def find(self, card: ConsoleCard, filters: DecisionFilters, limit: int = PAGE_SIZE,
             offset: int = 0) -> DecisionPage:
        """The Find page: the decisions that match the filters among every decision in the
        ledger, newest first, one page of them and how many match; the recent decisions in
        Redis when the ledger does not answer (the page says so)."""
        try:
            return self._ledger(lambda connection: find_in_ledger(connection, filters, limit, offset))
        except ConsoleUnavailable:
            return find_in_records(self.recent_records(RECENT_LIMIT), card, filters, limit, offset)

    def backtest(self) -> list[VersionBacktest]:
        """The back-test of every model version, each on its own portfolio (ledger.backtest)."""
        from ledger.backtest import run_backtest

        return list(self._ledger(lambda connection: run_backtest(connection, self._registry_cards)))

    @cached_property
    def _registry_cards(self) -> RegistryCards:
        return RegistryCards(self.settings.registry_dir, self.settings.outcome_dataset)


def post_score(base_url: str, event: JSONObject, token: SecretStr | None = None) -> ScoreOutcome:
    """POST one application event to the worker's ``/score`` (with the bearer token, if any)."""
    request = urllib.request.Request(f"{base_url}/score", data=json.dumps(event).encode(),
                                     headers={"Content-Type": "application/json",
                                              **bearer_header(token)},
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return ScoreOutcome("decided", decision=Decision.from_json(response.read()))
    except DecisionError as error:
        return ScoreOutcome("unavailable", detail=(
            f"The scoring service at {base_url} answered with something that is not a decision "
            f"({error}). Check that the worker and the console run the same release, then "
            "submit again."))
    except urllib.error.HTTPError as error:
        body = _json_or_empty(error.read())
        if error.code == 422:
            return ScoreOutcome("rejected", detail=str(body.get("detail", "invalid application")))
        if error.code == 401:
            return ScoreOutcome("unavailable", detail=(
                f"The scoring service at {base_url} refused the console's credential. Give the "
                "console the worker's token in CREDITRISK_API_TOKEN and restart it."))
        return ScoreOutcome("unavailable", detail=(
            f"The scoring service at {base_url} answered {error.code} "
            f"({body.get('detail', 'no detail')}). Check `curl {base_url}/health` and try again."))
    except (urllib.error.URLError, TimeoutError, OSError):
        return ScoreOutcome("unavailable", detail=(
            f"The scoring service at {base_url} does not answer. Start it with "
            "`creditrisk worker` (or set CREDITRISK_WORKER_URL) and submit again."))


def _json_or_empty(raw: bytes) -> JSONObject:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# ---- the score in words ---------------------------------------------------------------

def score_meaning(score: int, score_scale: ScoreScale) -> str:
    """The score in plain words, from model.json's ``score_scale``."""
    base_score, base_odds = score_scale.base_score, score_scale.base_odds
    doubling = score_scale.points_to_double_odds
    odds = base_odds * 2 ** ((score - base_score) / doubling)
    return (f"A score of {score} points means odds of about {_odds_text(odds)} that the loan "
            f"is repaid rather than defaulted. On this scale {base_score:.0f} points means "
            f"{base_odds:.0f}:1, and every {doubling:.0f} points more doubles the odds of "
            "repaying (a higher score is safer).")


def _odds_text(odds: float) -> str:
    return f"{odds:.0f}:1" if odds >= 1.5 else f"1:{1 / odds:.1f}"


def pd_to_points(probability_of_default: float, card: ModelCard) -> int:
    return int(score_points(np.array([probability_of_default]), card.score_scale)[0])


@dataclass(frozen=True)
class ScoreBand:
    low: float
    high: float
    label: str
    colour: str


DECISION_COLOURS = {"approve": "#2e7d32", "review": "#f9a825", "decline": "#c62828"}


def decision_bands(card: ModelCard, score: int) -> tuple[list[ScoreBand], tuple[int, int]]:
    """The score axis split into decline / review / approve from model.json thresholds
    (PD thresholds turned into points), and an axis range that holds the score."""
    decline_at = pd_to_points(card.thresholds.decline_at_or_above, card)
    approve_from = pd_to_points(card.thresholds.approve_below, card)
    low = min(pd_to_points(0.6, card), score - 10)
    high = max(pd_to_points(0.01, card), score + 10)
    bands = [ScoreBand(low, decline_at, "decline", DECISION_COLOURS["decline"]),
             ScoreBand(decline_at, approve_from, "review", DECISION_COLOURS["review"]),
             ScoreBand(approve_from, high, "approve", DECISION_COLOURS["approve"])]
    return bands, (low, high)


def grade_bands_text(card: ModelCard) -> str:
    """'A: 683+ · B: 662-682 ...' — each grade's range in points."""
    parts = []
    upper: int | None = None
    for band in card.risk_grades:
        lower = pd_to_points(band.max_pd, card) + 1 if band.max_pd < 1 else None
        if upper is None:
            parts.append(f"{band.grade}: {lower}+")
        elif lower is None:
            parts.append(f"{band.grade}: below {upper + 1}")
        else:
            parts.append(f"{band.grade}: {lower}-{upper}")
        upper = (lower - 1) if lower is not None else upper
    return " · ".join(parts)


# ---- reasons and contributions --------------------------------------------------------

@dataclass(frozen=True)
class Factor:
    """One factor of a decision in words, and its effect on the odds of default."""

    text: str
    impact: float                # contribution to the log-odds of the PD; > 0 raised risk

    @property
    def odds_factor(self) -> float:
        return math.exp(self.impact)


def risk_raising_factors(decision: Decision) -> list[Factor]:
    return [Factor(reason.text, reason.impact) for reason in decision.reasons]


def model_inputs(card: ModelCard, features_records: Sequence[Mapping[str, object]],
                 ) -> pd.DataFrame:
    """The model inputs of stored feature records (same encoder the worker used)."""
    encoder = card.encoder()
    frame = pd.DataFrame.from_records(features_records)
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].where(frame[column].notna(), np.nan)
    return encoder.transform_frame(frame)


def risk_lowering_factors(model: LoadedModel, features_record: Mapping[str, object],
                          limit: int = MAX_REASONS) -> list[Factor]:
    """The factors that pulled this applicant's risk down, as the worker explains its
    decisions: the served version's encoder and TreeSHAP contributions, scaled like the
    published reasons (:meth:`stream.reasons.ReasonBuilder.lowering`)."""
    inputs = model.encoder.transform_records([features_record])
    builder = ReasonBuilder.from_model_card(model.card)
    lowering = builder.lowering(model.contributions(inputs)[0, :-1], inputs[0], limit)
    console_card = ConsoleCard(model.card)
    position = {name: index for index, name in enumerate(model.feature_names)}
    return [Factor(_lowering_text(model.card.features[position[reason.feature]], reason.text,
                                  float(inputs[0, position[reason.feature]]), console_card),
                   reason.impact)
            for reason in lowering]


def _lowering_text(feature: CardFeature, reason_text: str, value: float,
                   card: ConsoleCard) -> str:
    """A factor that lowered the risk, with the customer's own value under the input's
    neutral name (the reason texts name the risky side, which would not be true here)."""
    if feature.type == "categorical":
        return reason_text
    label = card.input_label(feature.name)
    if math.isnan(value):
        return f"{label}: not available"
    if feature.display == "exp":
        return f"{label}: {math.exp(value):,.0f}"
    shown = f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{label}: {shown}"


# ---- comparison -----------------------------------------------------------------------

def similar_records(records: Sequence[DecisionRecord], card: ConsoleCard, group: SimilarGroup,
                    exclude_application: str | None = None) -> list[SimilarCustomer]:
    """Records in the group (the on-screen definition), as the ledger query selects them."""
    return [SimilarCustomer.from_record(record) for record in records
            if record.decision.application_id != exclude_application
            and group.holds(record.application, card.band_of)]


_SIMILAR_COLUMNS = ("application", "features", "application_id", "decision", "risk_grade")


def similar_from_ledger(connection: Connection, group: SimilarGroup, exclude_application: str | None,
                        limit: int) -> Parsed[SimilarCustomer]:
    """The group's decisions in the ledger, newest first: the grouping values by JSONB
    containment on the stored application (GIN index), the band by its numeric value."""
    sql = (f"SELECT {', '.join(_SIMILAR_COLUMNS)} FROM decisions "
           "WHERE application @> %s::jsonb AND application_id <> %s AND lineage_complete")
    parameters: list[object] = [json.dumps(dict(group.values)), exclude_application or ""]
    if group.band_field is not None and group.band is not None:
        low, high = group.band
        sql += (" AND jsonb_typeof(application -> %s) = 'number'"
                " AND (application ->> %s)::double precision >= %s"
                " AND (application ->> %s)::double precision < %s")
        parameters += [group.band_field, group.band_field, low, group.band_field,
                       high if high is not None else float("inf")]
    sql += " ORDER BY decided_at DESC LIMIT %s"
    rows = connection.execute(sql, (*parameters, limit)).fetchall()
    return parse_each((dict(zip(_SIMILAR_COLUMNS, row, strict=True)) for row in rows),
                      SimilarCustomer.from_row, "the ledger")


def reference_quantiles(card: ModelCard, feature: CompareFeature,
                        ) -> tuple[list[float], list[float]] | None:
    """(values, levels) of the training reference for a feature, in display units."""
    entry = card.reference.features.get(feature.name, {})
    quantiles = entry.get("quantiles") or {}
    if not quantiles:
        return None
    levels = sorted(float(level) for level in quantiles)
    values = [float(quantiles[str(level)] if str(level) in quantiles else
                    quantiles[f"{level}"]) for level in levels]
    if feature.show_as_exp:
        values = [math.exp(value) for value in values]
    return values, levels


def display_value(feature: CompareFeature, value: float) -> float:
    return math.exp(value) if feature.show_as_exp and not math.isnan(value) else value


def percentile_in_reference(value: float, values: list[float], levels: list[float]) -> float:
    """Share (0-100) of the reference population below ``value``, interpolated between the
    stored quantiles; beyond the outer quantiles it stays at them (1 % / 99 %), since the
    reference says no more. Equal quantiles (e.g. many zeros) put an equal value midway."""
    points = np.maximum.accumulate(np.asarray(values, dtype=np.float64))
    level_array = np.asarray(levels, dtype=np.float64)
    unique, first = np.unique(points, return_index=True)
    last = len(points) - 1 - np.unique(points[::-1], return_index=True)[1]
    low = np.interp(value, unique, level_array[first], left=levels[0], right=levels[-1])
    high = np.interp(value, unique, level_array[last], left=levels[0], right=levels[-1])
    return float(100.0 * (low + high) / 2)


def percentile_in_sample(value: float, sample: np.ndarray) -> float:
    """Share (0-100) of the sample below ``value`` (ties count half)."""
    present = sample[~np.isnan(sample)]
    if len(present) == 0:
        return float("nan")
    return 100.0 * (np.sum(present < value) + 0.5 * np.sum(present == value)) / len(present)


def reading(percentile: float, who: str) -> str:
    """'Higher than 85 % of similar customers.'"""
    if math.isnan(percentile):
        return f"No {who} to compare with."
    if percentile >= 50:
        return f"Higher than {percentile:.0f} % of {who}."
    return f"Lower than {100 - percentile:.0f} % of {who}."


# ---- the new-application form ---------------------------------------------------------

def form_problems(values: Mapping[str, object], fields: list[FormField]) -> list[str]:
    """What must be put right before the form is sent (the worker checks the rest and its
    422 answer is shown next to the form)."""
    problems = []
    customer_id = str(values.get("customer_id") or "").strip()
    if not customer_id:
        problems.append("Customer ID is required.")
    elif ":" in customer_id or any(character.isspace() for character in customer_id):
        problems.append("Customer ID cannot contain ':' or spaces.")
    if not str(values.get("application_id") or "").strip():
        problems.append("Application ID is required.")
    for item in fields:
        if values.get(item.name) is None and not item.nullable:
            problems.append(f"{item.label} is required.")
    return problems


def application_event(values: Mapping[str, object], fields: list[FormField],
                      now: datetime | None = None) -> JSONObject:
    """The application event for the form's values (blank optional fields left out)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    event: JSONObject = {"application_id": str(values["application_id"]).strip(),
                         "customer_id": str(values["customer_id"]).strip(),
                         "submitted_at": utc_timestamp(moment)}
    for item in fields:
        value = _form_value(values.get(item.name))
        if value is not None or item.nullable:
            event[item.name] = value
    return event


def _form_value(value: object) -> str | int | float | None:
    """One form input as the event carries it: text stripped (blank is none), whole numbers
    as integers."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    raise TypeError(f"a form input gave a {type(value).__name__}, not text or a number")
