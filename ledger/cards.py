"""What the ledger reads from the registered model cards: each version's portfolio, how that
portfolio's outcomes are classed, and the test figures its card promised.

A *portfolio* is the dataset a model was trained on (the card's ``dataset.name``): every
model of one portfolio decides the same book of loans, and servicing's outcomes of that
book are classed by the card's outcome lists (``dataset.bad_values`` and so on, the lists
training labelled with). Cards are read once per version (they never change) and a version
the registry does not hold is asked again only after ``RETRY_S``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from features.normalize import outcome_key
from onnx_models.card import ModelCard

log = logging.getLogger(__name__)

OutcomeClass = Literal["bad", "good", "open", "unknown"]
RETRY_S = 30.0


class _Recorded(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


class OutcomeLabels(_Recorded):
    """A portfolio's outcome lists, as its model card records them."""

    bad_values: tuple[str, ...] = ()
    good_values: tuple[str, ...] = ()
    excluded_values: tuple[str, ...] = ()

    @property
    def recorded(self) -> bool:
        return bool(self.bad_values and self.good_values)

    def classify(self, status: str) -> OutcomeClass:
        """Loan status → bad / good / open (still running) / unknown."""
        key = outcome_key(status)
        if key in {outcome_key(value) for value in self.bad_values}:
            return "bad"
        if key in {outcome_key(value) for value in self.good_values}:
            return "good"
        if key in {outcome_key(value) for value in self.excluded_values}:
            return "open"
        return "unknown"


class _TestCounts(_Recorded):
    rows: int | None = None
    bad_rate: float | None = None


class HeldOut(_Recorded):
    """How the card's test set was held out: ``out_of_time`` (loans from ``test_from`` on)
    or ``stratified`` (a random share)."""

    method: str = ""
    test_from: str | None = None
    test_rows: int | None = None


@dataclass(frozen=True)
class CardTest:
    """The card's test figures: AUC on ``rows`` test loans of which ``bad`` were bad (the
    counts are None on cards that did not record them)."""

    auc: float
    rows: int | None
    bad: int | None


def outcome_labels(card: ModelCard) -> OutcomeLabels:
    """The card's outcome lists (empty when it records none, or none that read as lists)."""
    try:
        return OutcomeLabels.model_validate(card.dataset.model_dump())
    except ValidationError:
        return OutcomeLabels()


def held_out_split(card: ModelCard) -> HeldOut:
    try:
        return HeldOut.model_validate((card.model_extra or {}).get("split") or {})
    except ValidationError:
        return HeldOut()


def card_test(card: ModelCard) -> CardTest:
    test = card.metrics.test
    try:
        counts = _TestCounts.model_validate(test.model_dump())
    except ValidationError:
        counts = _TestCounts()
    bad = (round(counts.rows * counts.bad_rate)
           if counts.rows is not None and counts.bad_rate is not None else None)
    return CardTest(test.auc, counts.rows, bad)


class RegistryCards:
    """The registry's cards as the ledger needs them (see the module docstring).

    Outcomes that name no portfolio are stored under the portfolio '' and count for
    whichever model decided the application; ``default_portfolio`` is the portfolio whose
    lists class them as they are stored (the back-test classes each by the deciding model's
    card)."""

    def __init__(self, registry_dir: Path, default_portfolio: str) -> None:
        self.registry_dir = registry_dir
        self.default_portfolio = default_portfolio
        self._cards: dict[str, ModelCard | None] = {}
        self._missing_since: dict[str, float] = {}
        self._labels: dict[str, OutcomeLabels] = {}
        self._warned: set[str] = set()

    def card(self, version: str) -> ModelCard | None:
        if version in self._cards:
            return self._cards[version]
        if time.monotonic() - self._missing_since.get(version, -RETRY_S) < RETRY_S:
            return None
        from onnx_models.registry import Registry, RegistryError

        try:
            card: ModelCard | None = Registry(self.registry_dir).load(version).card
        except (RegistryError, OSError):
            self._missing_since[version] = time.monotonic()
            return None
        self._cards[version] = card
        return card

    def portfolio(self, version: str) -> str:
        """The portfolio a model version decides (its card's dataset name; '' when the
        version is no longer registered: its decisions then match unnamed outcomes only)."""
        card = self.card(version)
        return card.dataset.name if card is not None else ""

    def card_test(self, version: str) -> CardTest | None:
        card = self.card(version)
        return None if card is None else card_test(card)

    def labels(self, portfolio: str) -> OutcomeLabels:
        """The outcome lists of the newest registered card of the portfolio that records
        them (empty lists: every outcome is then classed unknown, and a warning says why)."""
        found = self._labels.get(portfolio)
        if found is not None:
            return found
        if time.monotonic() - self._missing_since.get(f"portfolio {portfolio}", -RETRY_S) < RETRY_S:
            return OutcomeLabels()
        from onnx_models.registry import Registry

        for version in reversed(Registry(self.registry_dir).versions()):
            card = self.card(version)
            if card is None or card.dataset.name != portfolio:
                continue
            labels = outcome_labels(card)
            if labels.recorded:
                self._labels[portfolio] = labels
                return labels
        self._missing_since[f"portfolio {portfolio}"] = time.monotonic()
        if portfolio not in self._warned:
            self._warned.add(portfolio)
            log.warning("no registered model card of portfolio %r records its outcome lists: its "
                        "outcomes are classed unknown until a model of it is trained with this "
                        "version of `creditrisk train`", portfolio)
        return OutcomeLabels()

    def classify(self, portfolio: str, status: str) -> OutcomeClass:
        return self.labels(portfolio).classify(status)

    def version_labels(self, version: str) -> OutcomeLabels:
        """How the outcomes of a version's loans are classed: its own card's lists, else its
        portfolio's."""
        card = self.card(version)
        own = outcome_labels(card) if card is not None else OutcomeLabels()
        return own if own.recorded else self.labels(self.portfolio(version))
