"""``creditrisk demo``: the whole flow from nothing, as far as the product reaches today.

``--dataset generated`` (the default) runs it on Lending Club-shaped data, ``--dataset
home_credit`` on Home Credit-shaped data (application_train.csv with its bureau.csv served
as an aggregated feature view). Each step prints what it did; a step that fails stops the
demo with its own message.

The replay is honest about the back-test: it sends only loans the live model did not train
on — those issued after its training period when its test split was out-of-time, else its
held-out test loans — so realised AUC compares with the card's own test AUC on the same
kind of loans.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from config.json_types import JSONObject
from config.settings import REPO_ROOT, Settings, get_settings
from infra.stack import services as stack
from onnx_models.card import ModelCard
from training.generate import DEMO_DATA, DEMO_ROWS, DEMO_SEED

if TYPE_CHECKING:
    import pandas as pd
    from kafka import KafkaConsumer

    from stream.decisions import Decision

DEMO_EVENTS = 2_000
DEMO_RATE = 200.0


@dataclass(frozen=True)
class DemoDataset:
    """What the demo generates, trains on, loads into the feature store and replays."""

    config: str            # the dataset config the model is trained with
    title: str
    folder: Path
    loan_file: str
    rows: int

    @property
    def loans(self) -> Path:
        return self.folder / self.loan_file

    @property
    def bureau(self) -> Path:
        return self.folder / "bureau.csv"

    @property
    def replayed(self) -> Path:
        """The loans the demo replays (rows of the loan file the live model did not train on)."""
        return self.folder / "replayed.csv"


DEMO_DATASETS = {
    "generated": DemoDataset("generated", "Lending Club-shaped", DEMO_DATA, "loans.csv",
                             DEMO_ROWS),
    "home_credit": DemoDataset("home_credit", "Home Credit-shaped",
                               REPO_ROOT / "data" / "demo-home-credit", "application_train.csv",
                               50_000),
}


def _step(title: str, action: Callable[[Settings], None], settings: Settings) -> None:
    typer.secho(f"\n== {title}", bold=True)
    started = time.monotonic()
    action(settings)
    typer.echo(f"   ({time.monotonic() - started:.1f}s)")


def _stack_up(settings: Settings) -> None:
    stack.up(settings, echo=lambda line: typer.echo(f"   {line}"))


def _data(settings: Settings, dataset: DemoDataset) -> None:
    from training.generate import generate_loan_files

    if dataset.loans.is_file() and dataset.bureau.is_file():
        typer.echo(f"   reusing {dataset.loans} and bureau.csv (delete the folder to regenerate)")
        return
    if dataset.config == "home_credit":
        _home_credit_data(dataset)
        return
    summary = generate_loan_files(rows=DEMO_ROWS, seed=DEMO_SEED, out_dir=DEMO_DATA)
    typer.echo(f"   {summary.rows:,} loan applications of {summary.customers:,} customers, "
               f"bad rate {summary.bad_rate_resolved:.1%} among resolved loans, with the dirt of "
               f"real files; written to {DEMO_DATA}")


def _home_credit_data(dataset: DemoDataset) -> None:
    from training.generate_home_credit import generate_home_credit_files

    summary = generate_home_credit_files(rows=dataset.rows, seed=DEMO_SEED, out_dir=dataset.folder)
    typer.echo(f"   {summary.rows:,} applicants ({summary.bad_rate:.1%} with payment difficulties) "
               f"and {summary.bureau_rows:,} credits at other lenders "
               f"({summary.applicants_without_bureau:,} applicants have none), with the dirt of "
               f"the real files; written to {dataset.folder}")


def _reads(version_card: ModelCard, loans: Path) -> bool:
    """The demo can run on this model with this file: its application events can be built
    from the file's columns, and its card names the file's outcome column, its outcome lists
    and its test split (the back-test replays outcomes of loans the model did not train on; a
    card from before those were recorded means training a current one)."""
    from ledger.cards import held_out_split, outcome_labels
    from replay.core import EventLayout

    try:
        layout = EventLayout.from_card(version_card)
    except (KeyError, ValueError):
        return False
    if not outcome_labels(version_card).recorded or not held_out_split(version_card).method:
        return False
    with loans.open(newline="", encoding="utf-8", errors="replace") as handle:
        header = set(next(csv.reader(handle), []))
    return layout.columns.target_column is not None and set(layout.required_columns) <= header


def _model(settings: Settings, dataset: DemoDataset) -> None:
    from onnx_models.registry import Registry, RegistryError
    from training.pipeline import run_training

    registry = Registry(settings.registry_dir)
    live = registry.live_version()
    if live is not None and not _reads(registry.load(live).card, dataset.loans):
        # Another dataset's model is live: serve the latest model of this one, if any.
        fitting = []
        for version in registry.versions():
            try:
                if _reads(registry.load(version).card, dataset.loans):
                    fitting.append(version)
            except RegistryError:
                continue
        live = fitting[-1] if fitting else None
        if live is not None:
            registry.promote(live)
            typer.echo(f"   promoted {live}, the latest {dataset.title} model")
            _restart_our_worker(settings)
    if live is None:
        typer.echo("   no live model for this data: training one (clean, label, features, "
                   "SMOTE + LightGBM, calibration, ONNX export)")
        result = run_training(dataset.loans, dataset.config, registry_dir=settings.registry_dir,
                              log=lambda line: typer.echo(f"   {line}"))
        typer.echo(f"   report: {result.report_path}")
        live = result.version
        _restart_our_worker(settings)
    card = registry.load(live).card
    test = card.metrics.test
    typer.echo(f"   live model {live}: test AUC {test.auc:.3f}, KS {test.ks:.3f}, "
               f"Brier {test.brier:.4f} (creditrisk model show live)")
    typer.echo(f"   the demo replays {_write_replayed(card, dataset)}: {dataset.replayed}")


def _write_replayed(card: ModelCard, dataset: DemoDataset) -> str:
    """Write the first ``DEMO_EVENTS`` loans of the file the live model did not train on to
    ``dataset.replayed`` (as the file has them); say which loans they are."""
    import pandas as pd

    from ledger.cards import held_out_split
    from training.cleaning import clean_loans
    from training.datasets import load_clean_labelled, load_dataset_config, load_raw

    config = load_dataset_config(dataset.config)
    split = held_out_split(card)
    if split.method == "out_of_time" and split.test_from and config.date_column:
        frame, _ = clean_loans(load_raw(dataset.loans, config), config)
        issued = pd.to_datetime(frame[config.date_column], errors="coerce")
        unseen = set(frame.loc[issued >= pd.Period(split.test_from, "M").start_time,
                               "application_id"].astype(str))
        which = (f"loans issued from {split.test_from} on, after the live model's training "
                 "period (none of them trained it; its test set is loans of the same months)")
    elif split.method == "out_of_fold":
        # Few bad loans: the live model was fitted on every labelled row of the file.
        unseen = set(load_clean_labelled(dataset.loans, config)[0]["application_id"].astype(str))
        which = ("loans of the file, every one of which trained the live model (few bad loans: "
                 "no test split was kept, its test figures are out-of-fold), so the demo's "
                 "back-test on them is in-sample, not a test")
    else:
        unseen = _held_out_ids(card, load_clean_labelled(dataset.loans, config)[0],
                               config.date_column, split.test_rows)
        which = ("of the live model's held-out test loans (its split is stratified: the file "
                 "has no application dates), none of which trained it")
    raw = pd.read_csv(dataset.loans, dtype=str, keep_default_na=False, encoding_errors="replace")
    rows = raw[raw[config.id_column].str.strip().isin(unseen)].head(DEMO_EVENTS)
    rows.to_csv(dataset.replayed, index=False)
    return f"{len(rows):,} {which}"


def _held_out_ids(card: ModelCard, labelled: pd.DataFrame, date_column: str | None,
                  test_rows: int | None) -> set[str]:
    """The application ids of the card's test set, drawn again as training drew it."""
    from training.split import split_test
    from training.training_config import TrainingConfig

    recorded = ((card.model_extra or {}).get("training") or {}).get("config") or {}
    defaults = TrainingConfig()
    frame = labelled.reset_index(drop=True)
    split = split_test(frame, frame["bad"].to_numpy(), date_column,
                       float(recorded.get("test_fraction", defaults.test_fraction)),
                       int(recorded.get("seed", defaults.seed)))
    if test_rows is not None and len(split.test_positions) != test_rows:
        raise stack.StackError(
            f"the live model's card records {test_rows:,} test loans but this file yields "
            f"{len(split.test_positions):,}: it was trained on another file, so the demo cannot "
            "tell which loans it did not train on; train a model on this file (creditrisk train "
            "--data FILE --dataset NAME) and run the demo again")
    return set(frame["application_id"].iloc[split.test_positions].astype(str))


def _restart_our_worker(settings: Settings) -> None:
    """A worker keeps the event contract it started with: one this stack started is restarted
    on the newly live model (another dataset's); one it did not start is left alone."""
    worker = stack.Worker(settings)
    if not worker.answering():
        return
    if worker.our_pid() is None:
        raise stack.StackError(
            f"a worker not started by this stack answers on port {settings.worker_port} and "
            "serves another dataset's events; stop it (or set "
            "CREDITRISK_ALLOW_EVENT_CONTRACT_CHANGE=true for it) and run the demo again")
    typer.echo(f"   {worker.stop()} (it served another dataset's model; started again below)")


def _replays_history(dataset: DemoDataset) -> bool:
    """The dataset's applications carry their own dates and its bureau view is the loan file's
    own columns: the demo replays them as of those dates, with the bureau values of then."""
    from training.datasets import load_dataset_config

    config = load_dataset_config(dataset.config)
    return bool(config.date_column) and not any(view.aggregations for view in config.views)


def _replayed_applications(dataset: DemoDataset) -> pd.DataFrame:
    """The replayed rows (``dataset.replayed``) cleaned as training cleans them."""
    from training.cleaning import clean_loans
    from training.datasets import load_dataset_config, load_raw

    config = load_dataset_config(dataset.config)
    frame, _ = clean_loans(load_raw(dataset.replayed, config), config)
    return frame


def _features(settings: Settings, dataset: DemoDataset) -> None:
    """Replayed history is enriched as of its own dates; otherwise (and after the replay, see
    :func:`_todays_bureau`) the bureau table is loaded as of today's pull."""
    if not _replays_history(dataset):
        _todays_bureau(settings, dataset)
        return
    from features.materialize import materialize_as_of_applications
    from features.store import sync_client

    applications = _replayed_applications(dataset)
    client = sync_client(settings, "materializer")
    try:
        report = materialize_as_of_applications(applications, client,
                                                schema_version=settings.feature_schema_version,
                                                key_prefix=settings.key_prefix)
    finally:
        client.close()
    typer.echo(f"   the bureau values of the {len(applications):,} applications to replay, each true "
               "as of its own application month (point in time, as training saw them)")
    for line in report.summary().splitlines():
        typer.echo(f"   {line}")


def _todays_bureau(settings: Settings, dataset: DemoDataset) -> None:
    from features.materialize import materialize_bureau_features, materialize_view
    from features.store import sync_client
    from training.datasets import load_dataset_config

    # The generated bureau table is a historical snapshot; the demo loads it as today's
    # bureau pull so that applications submitted now find fresh values.
    views = load_dataset_config(dataset.config).views
    client = sync_client(settings, "materializer")
    try:
        if views and views[0].aggregations:
            report = materialize_view(dataset.bureau, client, views[0],
                                      settings.feature_schema_version, settings.key_prefix,
                                      as_of=datetime.now(UTC))
            typer.echo(f"   view {views[0].name!r}: {len(views[0].fields)} aggregates per "
                       f"applicant over {dataset.bureau}")
        else:
            report = materialize_bureau_features(dataset.bureau, client,
                                                 settings.feature_schema_version,
                                                 settings.key_prefix, as_of=datetime.now(UTC))
    finally:
        client.close()
    for line in report.summary().splitlines():
        typer.echo(f"   {line}")


def _todays_bureau_after_history(settings: Settings, dataset: DemoDataset) -> None:
    if not _replays_history(dataset):
        typer.echo("   loaded before the replay (the applications were submitted now)")
        return
    _todays_bureau(settings, dataset)


def _worker(settings: Settings) -> None:
    worker = stack.Worker(settings)
    typer.echo(f"   {worker.start(echo=lambda line: typer.echo(f'   {line}'))}")
    typer.echo(f"   log: {worker.log_path}")


# The demo's lender, for its adverse-action notices when CREDITRISK_NOTICE_* are not set: a
# lender sets its own name and address, its regulator and the bureau it pulls from.
DEMO_NOTICE_SETTINGS = {
    "CREDITRISK_NOTICE_CREDITOR_NAME": "Demo Lending Company (demonstration only)",
    "CREDITRISK_NOTICE_CREDITOR_ADDRESS": "100 Example Avenue, Springfield, ST 00000",
    "CREDITRISK_NOTICE_CREDITOR_PHONE": "1-800-000-0000",
    "CREDITRISK_NOTICE_AGENCY_NAME": "Consumer Financial Protection Bureau",
    "CREDITRISK_NOTICE_AGENCY_ADDRESS": "1700 G Street NW, Washington, DC 20552",
    "CREDITRISK_NOTICE_BUREAU_NAME": "Experian",
    "CREDITRISK_NOTICE_BUREAU_ADDRESS": "P.O. Box 2002, Allen, TX 75013",
    "CREDITRISK_NOTICE_BUREAU_PHONE": "1-888-397-3742",
}
# The demo's console users: name -> role; each password is generated once into the stack's
# secrets folder (console-user-<name>).
DEMO_USERS = {"demo-reviewer": "reviewer", "demo-approver": "approver", "demo-admin": "admin"}


def _ledger(settings: Settings) -> None:
    import os

    for name, value in DEMO_NOTICE_SETTINGS.items():
        os.environ.setdefault(name, value)  # the ledger writer produces the notices
    ledger = stack.Ledger(settings)
    typer.echo(f"   {ledger.start(echo=lambda line: typer.echo(f'   {line}'))}")
    typer.echo(f"   log: {ledger.log_path}; metrics: http://127.0.0.1:{settings.ledger_port}/metrics")


def _outcomes_and_backtest(settings: Settings, dataset: DemoDataset) -> None:
    """Servicing reports what became of the replayed loans; the ledger judges the model on
    them, beside what its card measured on its own test set."""
    import psycopg

    from ledger.backtest import report_lines, run_backtest
    from ledger.cli import registry_cards
    from onnx_models.registry import Registry
    from replay.core import live_event_layout, replay_outcomes

    layout = live_event_layout(settings.registry_dir)
    summary = replay_outcomes(dataset.replayed, settings, settings.topic_outcomes, DEMO_EVENTS,
                              progress=False, layout=layout)
    typer.echo(f"   {summary.line()} (portfolio {layout.portfolio})")
    deadline = time.monotonic() + 60
    with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as connection:
        rows = outcomes = 0
        while time.monotonic() < deadline:
            counts = connection.execute(
                "SELECT (SELECT count(*) FROM decisions), "
                "(SELECT count(*) FROM loan_outcomes WHERE portfolio = %s)",
                (layout.portfolio,)).fetchone()
            rows, outcomes = counts if counts else (0, 0)
            if outcomes >= summary.sent:
                break
            time.sleep(1)
        typer.echo(f"   ledger: {rows:,} decisions, {outcomes:,} loan outcomes of this portfolio")
        results = run_backtest(connection, registry_cards(settings))
    live = Registry(settings.registry_dir).live_version()
    realised = [result for result in results if result.model_version == live]
    for line in report_lines(realised)[:3]:
        typer.echo(f"   {line}")
    typer.echo("   realised: the replayed loans the live model did not train on; model card: its "
               "own test set; in brackets 95 % confidence intervals")
    typer.echo("   the whole back-test: creditrisk monitor; the ledger writer's /metrics "
               "(creditrisk_backtest_auc); the console's Model performance page")


def _review_queue(settings: Settings) -> None:
    """What the replay left for people: the review queue, the final decisions, the notices."""
    import time

    import psycopg

    from onnx_models.registry import Registry

    live = Registry(settings.registry_dir).live_version()
    deadline = time.monotonic() + 30
    with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as connection:
        while True:
            row = connection.execute(
                "SELECT (SELECT count(*) FROM decisions WHERE decision = 'review' "
                "        AND model_version = %s), "
                "(SELECT count(*) FROM review_items WHERE status <> 'decided'), "
                "(SELECT count(*) FROM final_decisions), "
                "(SELECT count(*) FROM final_decision_publications), "
                "(SELECT count(*) FROM adverse_action_notices)", (live,)).fetchone()
            reviews, queued, finals, published, notices = (int(str(v)) for v in row or (0,) * 5)
            if published >= finals or time.monotonic() > deadline:
                break
            time.sleep(1)
    typer.echo(f"   review queue: {queued:,} items waiting; the live model {live} referred "
               f"{reviews:,} applications for review; each item is due "
               f"{settings.review_service_level_hours:g} h after its decision")
    typer.echo(f"   final decisions: {finals:,} ({published:,} published to "
               f"{settings.topic_final_decisions}); adverse-action notices: {notices:,}")


def _users(settings: Settings) -> None:
    import psycopg

    from infra.stack.services import ensure_stack_secret
    from review.users import add_user, find_user

    with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as connection:
        for name, role in DEMO_USERS.items():
            password = ensure_stack_secret(settings, f"console-user-{name}")
            if find_user(connection, name) is None:
                add_user(connection, name, role, password, "demo")
            typer.echo(f"   {name} ({role}): password in "
                       f"{settings.stack_secret_path(f'console-user-{name}')}")
    typer.echo("   your own users: creditrisk users add NAME --role reviewer|approver|admin|viewer")


def _console(settings: Settings) -> None:
    console = stack.Console(settings)
    typer.echo(f"   {console.start(echo=lambda line: typer.echo(f'   {line}'))}")
    typer.echo(f"   open http://127.0.0.1:{settings.console_port} to explain any decision above")


def _fairness(settings: Settings) -> None:
    """Adverse impact by group on the live model's decisions: the worker's own windows (its
    /metrics gauges) and the ledger's fairness back-test over every decision and outcome."""
    import psycopg

    from ledger.cli import registry_cards
    from ledger.fairness import run_fairness, summary_lines
    from onnx_models.registry import Registry

    live = Registry(settings.registry_dir).live_version()
    with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as connection:
        results = run_fairness(connection, registry_cards(settings))
    mine = next((result for result in results if result.model_version == live), None)
    if mine is None:
        typer.echo(f"   the ledger holds no decision of the live model {live} yet")
        return
    if not mine.monitored:
        typer.echo(f"   model {live}: nothing monitored: {mine.note}")
        return
    typer.echo(f"   model {live}, groups judged with at least {mine.spec.min_group_size:,} "
               f"decisions; AIR = a group's approval rate / the reference group's, flagged when "
               f"even its 95 % upper bound is below {mine.spec.air_threshold:g} (four-fifths rule)")
    typer.echo("   live, the worker's last 24 h (/metrics: creditrisk_fairness_adverse_impact_ratio):")
    for line in worker_fairness_lines(settings, "24h"):
        typer.echo(f"     {line}")
    typer.echo("   the ledger, all decisions and matured loans (creditrisk monitor --fairness):")
    for line in summary_lines(mine):
        typer.echo(f"     {line}")
    typer.echo(f"   plots: the console's Fairness page, http://127.0.0.1:{settings.console_port} "
               "(sign in, then Fairness in the sidebar)")


def worker_fairness_lines(settings: Settings, window: str) -> list[str]:
    """The worker's fairness gauges of one window, one line per attribute: each group's AIR
    with its interval (judged groups), else its count."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.worker_port}/metrics",
                                    timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return [f"the worker's /metrics on port {settings.worker_port} does not answer"]
    return fairness_gauge_lines(text, window)


def fairness_gauge_lines(metrics_text: str, window: str) -> list[str]:
    """Lines from a worker's /metrics text (see :func:`worker_fairness_lines`)."""
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[str, dict[str, float]] = {}
    ratios: dict[tuple[str, str], dict[str, float]] = {}
    rates: dict[tuple[str, str], dict[str, float]] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("window") != window:
                continue
            if sample.name == "creditrisk_fairness_group_decisions":
                counts.setdefault(labels["attribute"], {})[labels["group"]] = sample.value
            elif sample.name in ("creditrisk_fairness_adverse_impact_ratio",
                                 "creditrisk_fairness_approval_rate"):
                found = ratios if "impact" in sample.name else rates
                found.setdefault((labels["attribute"], labels["group"]), {})[
                    labels["bound"]] = sample.value
    if not counts:
        return ["no fairness series yet (the worker counts the new decisions it makes; "
                "decisions reused from an earlier run are not counted again)"]
    lines = []
    for attribute, groups in counts.items():
        parts = []
        for group, decisions in groups.items():
            ratio, rate = ratios.get((attribute, group)), rates.get((attribute, group))
            if ratio and {"estimate", "low", "high"} <= set(ratio):
                parts.append(f"{group} AIR {ratio['estimate']:.2f} [{ratio['low']:.2f}, "
                             f"{ratio['high']:.2f}] ({decisions:,.0f} decisions)")
            elif rate and {"estimate", "low", "high"} <= set(rate):  # judged, no AIR: reference
                parts.append(f"{group} reference (approval rate {rate['estimate']:.2f} "
                             f"[{rate['low']:.2f}, {rate['high']:.2f}], {decisions:,.0f} "
                             "decisions)")
            else:
                parts.append(f"{group} {decisions:,.0f} decisions")
        lines.append(f"{attribute}: " + "; ".join(parts))
    return lines


def _replay_and_summarise(settings: Settings, dataset: DemoDataset) -> None:
    from replay.core import live_event_layout, replay_applications

    decisions, dead_letters = _topic_tails(settings)
    summary = replay_applications(dataset.replayed, settings,
                                  settings.topic_applications, DEMO_EVENTS, DEMO_RATE,
                                  submitted_at="original" if _replays_history(dataset) else "now",
                                  layout=live_event_layout(settings.registry_dir))
    when = "each submitted in its own application month" if _replays_history(dataset) else "submitted now"
    typer.echo(f"   sent {summary.sent:,} applications at {DEMO_RATE:.0f}/s, {when} "
               f"(the same ids as any earlier demo run: stored decisions are reused)")
    decided, letters = _collect(decisions, dead_letters, summary.sent)
    outcomes = Counter(decision.decision for decision in decided.values())
    counts = ", ".join(f"{k} {v:,}" for k, v in outcomes.most_common())
    typer.echo(f"   decisions: {len(decided):,} ({counts})")
    reasons = Counter(letter["error"] for letter in letters)
    typer.echo(f"   dead letters (dirty rows of the file): {len(letters):,} "
               f"({', '.join(f'{k} {v}' for k, v in reasons.most_common()) or 'none'})")
    example = next((d for d in decided.values() if d.decision == "decline"), None)
    if example:
        typer.echo(f"   e.g. {example.application_id}: decline, "
                   f"PD {example.probability_of_default:.1%}, "
                   f"score {example.score}, grade {example.risk_grade}, because:")
        for reason in example.reasons:
            typer.echo(f"     {reason.code} {reason.text}")


def _topic_tails(settings: Settings) -> tuple[KafkaConsumer, KafkaConsumer]:
    """Consumers positioned at the current end of the output topics."""
    from kafka import KafkaConsumer, TopicPartition

    from config.kafka_auth import kafka_python_options

    consumers = []
    for topic in (settings.topic_decisions, settings.topic_dead_letters):
        consumer = KafkaConsumer(**kafka_python_options(settings, "reader"), group_id=None,
                                 enable_auto_commit=False)
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        consumer.seek_to_end(*partitions)
        for partition in partitions:
            consumer.position(partition)
        consumers.append(consumer)
    return consumers[0], consumers[1]


def _collect(decisions: KafkaConsumer, dead_letters: KafkaConsumer, expected: int,
             idle_s: float = 20.0) -> tuple[dict[str, Decision], list[JSONObject]]:
    from stream.decisions import Decision

    decided: dict[str, Decision] = {}
    letters: list[JSONObject] = []
    last_seen = time.monotonic()
    while len(decided) + len(letters) < expected and time.monotonic() - last_seen < idle_s:
        for consumer, sink in ((decisions, None), (dead_letters, letters)):
            for records in consumer.poll(timeout_ms=300).values():
                last_seen = time.monotonic()
                for record in records:
                    if sink is None:
                        decision = Decision.from_json(record.value)
                        decided[decision.application_id] = decision
                    else:
                        sink.append(json.loads(record.value))
    decisions.close()
    dead_letters.close()
    return decided, letters


def _show_where_to_look(settings: Settings, dataset: DemoDataset) -> None:
    for line in _stack_lines(settings):
        typer.echo(line)
    typer.echo(f"   Ledger:           postgresql://{settings.postgres_user}@{settings.postgres_host}:"
               f"{settings.postgres_port}/{settings.postgres_database} (creditrisk monitor)")
    typer.echo(f"   Prometheus:       http://127.0.0.1:{settings.prometheus_port}")
    typer.echo(f"   Model registry:   {settings.registry_dir} (creditrisk model list)")
    typer.echo(f"   Worker:           http://127.0.0.1:{settings.worker_port}/health, /metrics, "
               "POST /score")
    typer.echo(f"   Metrics in Prometheus: http://127.0.0.1:{settings.prometheus_port}/graph?"
               "g0.expr=sum%20by%20(decision)%20(rate(creditrisk_decisions_total%5B1m%5D))")
    typer.echo("   Follow decisions: creditrisk decisions tail; more load: creditrisk produce "
               f"--data {dataset.loans} --rate 100 --count 5000 --start 2000")
    typer.echo(f"   Console:          http://127.0.0.1:{settings.console_port} (Fairness: "
               "approval rate and adverse impact by group)")
    down = "creditrisk stack down" + (" --cluster" if settings.profile == "cluster" else "")
    typer.echo(f"   Stop it all (worker and console included) with: {down}")


def _stack_lines(settings: Settings) -> list[str]:
    """Which stack the demo ran on and where its Kafka and Redis are: every broker, and on
    the clustered stack every Redis Cluster seed node (a client reaches the others through
    them), never a password."""
    topics = (f"topics {settings.topic_applications}, {settings.topic_decisions}, "
              f"{settings.topic_dead_letters}")
    brokers = ", ".join(f"{host}:{port}" for host, port in settings.kafka_brokers)
    if not settings.redis_cluster_seeds:
        return [f"   Kafka bootstrap:  {brokers} ({topics})",
                f"   Redis:            {settings.redis_address} (ACL users: README, Redis users)"]
    nodes = ", ".join(f"{host}:{port}" for host, port in settings.redis_cluster_seeds)
    return [f"   Stack:            the clustered stack ({len(settings.kafka_brokers)} Kafka "
            f"brokers, a Redis Cluster with {len(settings.redis_cluster_seeds)} seed nodes; folder "
            f"{settings.stack_dir}; creditrisk stack status --cluster)",
            f"   Kafka brokers:    {brokers} ({topics}; replication factor "
            f"{settings.kafka_replication_factor}, min.insync.replicas "
            f"{settings.kafka_min_insync_replicas})",
            f"   Redis Cluster:    seeds {nodes} (key schema {settings.feature_schema_version}; "
            "ACL users: README, Redis users)"]


def demo(
    dataset: str = typer.Option("generated", "--dataset",
                                help="'generated': Lending Club-shaped data (the default); "
                                     "'home_credit': Home Credit-shaped application_train.csv "
                                     "and bureau.csv"),
    cluster: bool = typer.Option(False, "--cluster", help="on the clustered stack (three Kafka "
                                 "brokers, a six-node Redis Cluster; the same as "
                                 "CREDITRISK_PROFILE=cluster)"),
) -> None:
    """Run the whole flow from nothing: stack, data, model, feature store, worker, replay,
    console."""
    chosen = DEMO_DATASETS.get(dataset)
    if chosen is None:
        typer.secho(f"--dataset {dataset!r}: choose one of {', '.join(DEMO_DATASETS)}",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2)
    if cluster:  # the worker, ledger writer and console it starts inherit the profile
        os.environ["CREDITRISK_PROFILE"] = "cluster"
        get_settings.cache_clear()
    settings = get_settings()

    def with_data(action: Callable[[Settings, DemoDataset], None]) -> Callable[[Settings], None]:
        return lambda current: action(current, chosen)

    try:
        _step("Local stack (Kafka, Redis, PostgreSQL, Prometheus)", _stack_up, settings)
        _step(f"Loan data ({chosen.title}) and the bureau table", with_data(_data), settings)
        _step("Model (trained offline, served from the ONNX registry)", with_data(_model),
              settings)
        _step("Bureau features into the Redis feature store", with_data(_features), settings)
        _step("Scoring worker (Faust)", _worker, settings)
        _step("Decision ledger writer (PostgreSQL)", _ledger, settings)
        _step("Applications replayed into Kafka, decisions read back",
              with_data(_replay_and_summarise), settings)
        _step("Loan outcomes from servicing, and the back-test", with_data(_outcomes_and_backtest),
              settings)
        _step("Today's bureau pull into the feature store (for new applications)",
              with_data(_todays_bureau_after_history), settings)
        _step("Review queue, final decisions and adverse-action notices", _review_queue,
              settings)
        _step("Console users (named, with roles)", _users, settings)
        _step("Relationship-manager and underwriter console", _console, settings)
        _step("Fair lending: adverse impact ratio by group", _fairness, settings)
        _step("Where to look", with_data(_show_where_to_look), settings)
    except stack.StackError as error:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
