"""Population stability of the live stream against the model's training reference.

The model card (``model.json``, section ``reference``) records, per feature, the bin edges and
the share of training rows per bin plus the share missing; for the score the same on the
test set, and for the probability of default a fixed histogram. The worker feeds every scored
batch to a :class:`DriftMonitor`, which bins the values with those same edges and keeps
per-batch bin counts for a rolling window of recent applications; ``psi()`` compares the
window's shares with the reference.

    PSI = sum over bins of (observed - expected) * ln(observed / expected)

Missing values have a bin of their own (reference ``missing_share`` vs the observed share
missing), so a feature that suddenly arrives empty shows up as drift. A share of zero on
either side is raised to ``EMPTY_BIN_SHARE`` (1e-4) first: the logarithm needs it, and 1e-4
is small enough that a bin seen in 1 of 5,000 live applications still counts as "rare", not
"impossible". Usual reading: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 significant shift.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from onnx_models.card import ModelCard

# How many model inputs are watched besides the score and the PD.
KEY_FEATURE_COUNT = 7
SCORE = "score"
PROBABILITY_OF_DEFAULT = "probability_of_default"
EMPTY_BIN_SHARE = 1e-4
DEFAULT_WINDOW = 5_000
DEFAULT_MIN_SAMPLE = 200


@dataclass(frozen=True)
class _Binning:
    """How one monitored quantity is binned, and its reference shares (missing bin last)."""

    name: str
    column: int | None          # position in the model input; None for score and PD
    inner_edges: np.ndarray     # edges between bins (the outer bins are open)
    expected: np.ndarray        # reference share per bin, the missing bin last; sums to 1
    offset: int                 # first slot of this quantity in the flat count vector

    @property
    def bins(self) -> int:
        return len(self.expected)

    def bin_index(self, values: np.ndarray) -> np.ndarray:
        """Bin of each value (the last bin for missing), shifted into the flat count vector."""
        values = np.asarray(values, dtype=np.float64)
        # side="right" is how training.reference counted the reference shares. Category
        # codes are binned the same way between half-integer edges (see _from_reference).
        index = np.searchsorted(self.inner_edges, values, side="right")
        index[np.isnan(values)] = self.bins - 1
        return index + self.offset


def population_stability_index(observed_counts: np.ndarray, expected_shares: np.ndarray,
                               empty_bin_share: float = EMPTY_BIN_SHARE) -> float:
    """PSI of observed bin counts against expected bin shares (same bins, same order)."""
    observed = np.asarray(observed_counts, dtype=np.float64)
    total = observed.sum()
    if total <= 0:
        raise ValueError("population_stability_index needs at least one observed value.")
    observed = np.maximum(observed / total, empty_bin_share)
    expected = np.maximum(np.asarray(expected_shares, dtype=np.float64), empty_bin_share)
    return float(np.sum((observed - expected) * np.log(observed / expected)))


class DriftMonitor:
    """PSI of the score, the PD and key features over the last ``window`` applications.

    ``observe`` costs one ``searchsorted`` per monitored quantity and one ``bincount`` per
    batch; memory is one small count vector per batch in the window (never the values).
    Features named in ``features`` but absent from the card are skipped (see ``skipped``).
    """

    def __init__(self, card: ModelCard, features: Sequence[str] | None = None,
                 window: int = DEFAULT_WINDOW, min_sample: int = DEFAULT_MIN_SAMPLE,
                 empty_bin_share: float = EMPTY_BIN_SHARE) -> None:
        self.card = card
        self.features = tuple(features) if features is not None else key_features(card)
        self.window = window
        self.min_sample = min_sample
        self.empty_bin_share = empty_bin_share
        self._check_parameters()
        self.feature_count = len(card.features)
        self.binnings, self.skipped = _binnings(card, self.features)
        self._by_name = {binning.name: binning for binning in self.binnings}
        self._slots = sum(binning.bins for binning in self.binnings)
        self._batches: deque[tuple[int, np.ndarray]] = deque()
        self._totals = np.zeros(self._slots, dtype=np.int64)
        self._rows = 0
        self._feature_binnings = [b for b in self.binnings if b.column is not None]

    def _check_parameters(self) -> None:
        if not isinstance(self.card, ModelCard):
            raise TypeError("DriftMonitor needs the model card (onnx_models.card.ModelCard, as "
                            "a registered version's .card).")
        if not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"window must be a positive number of applications, got {self.window!r}.")
        if not isinstance(self.min_sample, int) or self.min_sample < 1:
            raise ValueError(f"min_sample must be a positive integer, got {self.min_sample!r}.")
        if not 0 < self.empty_bin_share < 0.01:
            raise ValueError(f"empty_bin_share must be small and positive, got {self.empty_bin_share!r}.")

    @property
    def monitored(self) -> tuple[str, ...]:
        """Names ``psi()`` reports on, once enough applications were seen."""
        return tuple(binning.name for binning in self.binnings)

    @property
    def rows_in_window(self) -> int:
        return self._rows

    @property
    def batches_in_window(self) -> int:
        """Count vectors held: at most ``window`` (one per batch), whatever the traffic."""
        return len(self._batches)

    def observe(self, inputs: np.ndarray, scores: np.ndarray,
                probability_of_default: np.ndarray | None = None) -> None:
        """Add one scored batch: ``inputs`` float32 [N, F] in model.json feature order,
        ``scores`` the N score points, optionally the N calibrated PDs."""
        inputs = np.asarray(inputs)
        rows = len(scores)
        if inputs.ndim != 2 or inputs.shape != (rows, self.feature_count):
            raise ValueError(f"inputs must be [{rows}, {self.feature_count}] (one row per score, "
                             f"model.json feature order), got {list(inputs.shape)}.")
        if probability_of_default is not None and len(probability_of_default) != rows:
            raise ValueError(f"got {len(probability_of_default)} PDs for {rows} scores.")
        if rows == 0:
            return
        slots = [binning.bin_index(inputs[:, binning.column]) for binning in self._feature_binnings]
        if SCORE in self._by_name:
            slots.append(self._by_name[SCORE].bin_index(scores))
        if probability_of_default is not None and PROBABILITY_OF_DEFAULT in self._by_name:
            slots.append(self._by_name[PROBABILITY_OF_DEFAULT].bin_index(probability_of_default))
        counts = np.bincount(np.concatenate(slots), minlength=self._slots)
        self._batches.append((rows, counts))
        self._totals += counts
        self._rows += rows
        # Keep the fewest recent batches that still cover the window.
        while len(self._batches) > 1 and self._rows - self._batches[0][0] >= self.window:
            old_rows, old_counts = self._batches.popleft()
            self._totals -= old_counts
            self._rows -= old_rows

    def psi(self) -> dict[str, float]:
        """PSI per monitored quantity; a quantity seen fewer than ``min_sample`` times in the
        window is absent (too few values to say anything)."""
        result: dict[str, float] = {}
        for binning in self.binnings:
            counts = self._totals[binning.offset:binning.offset + binning.bins]
            if counts.sum() >= self.min_sample:
                result[binning.name] = population_stability_index(
                    counts, binning.expected, self.empty_bin_share)
        return result



def key_features(card: ModelCard, count: int = KEY_FEATURE_COUNT) -> tuple[str, ...]:
    """The inputs worth watching for drift: the model's most important ones (its card's
    split-gain shares) that have a training reference, else the first referenced ones."""
    referenced = card.reference.features
    return tuple([name for name in card.inputs_by_importance() if name in referenced][:count])


def _binnings(card: ModelCard, names: Sequence[str]) -> tuple[list[_Binning], tuple[str, ...]]:
    """Binnings for the key features the card knows, then the score and the PD."""
    feature_references = card.reference.features
    positions = {name: index for index, name in enumerate(card.feature_names)}
    binnings: list[_Binning] = []
    skipped: list[str] = []
    offset = 0
    for name in dict.fromkeys(names):
        entry = feature_references.get(name)
        binning = (_from_reference(name, positions[name], entry, offset)
                   if name in positions and entry else None)
        if binning is None:
            skipped.append(name)
            continue
        binnings.append(binning)
        offset += binning.bins
    score_reference = card.reference.score
    extra = [(SCORE, score_reference.get("score")),
             (PROBABILITY_OF_DEFAULT, _pd_as_numeric(score_reference))]
    for name, entry in extra:
        binning = _from_reference(name, None, entry, offset) if entry else None
        if binning is None:
            skipped.append(name)
            continue
        binnings.append(binning)
        offset += binning.bins
    return binnings, tuple(skipped)


def _from_reference(name: str, column: int | None, entry: Mapping[str, Any],
                    offset: int) -> _Binning | None:
    if entry.get("type") == "categorical":
        shares = list(entry.get("shares", {}).values())
        expected = np.array([*shares, entry.get("missing_or_unknown_share", 0.0)], dtype=np.float64)
        # Codes are category positions 0..n-1 (NaN unknown): edges halfway between them.
        edges = np.arange(len(shares) - 1, dtype=np.float64) + 0.5
    else:
        if not entry.get("bin_shares"):
            return None  # the feature was entirely missing in training: nothing to compare
        edges = np.asarray(entry["bin_edges"], dtype=np.float64)
        # bin_shares are shares of all rows, missing excluded: missing_share completes them.
        expected = np.array([*list(entry["bin_shares"]), entry.get("missing_share", 0.0)],
                            dtype=np.float64)
    if expected.sum() <= 0:
        return None
    return _Binning(name=name, column=column, inner_edges=edges, expected=expected / expected.sum(),
                    offset=offset)


def _pd_as_numeric(score_reference: Mapping[str, Any]) -> dict[str, Any] | None:
    """The PD histogram (full edges 0..1) in the numeric reference shape (inner edges)."""
    edges = score_reference.get("pd_bin_edges")
    shares = score_reference.get("pd_bin_shares")
    if not edges or not shares or len(edges) != len(shares) + 1:
        return None
    return {"type": "numeric", "bin_edges": list(edges[1:-1]), "bin_shares": list(shares),
            "missing_share": 0.0}
