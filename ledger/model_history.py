"""The models' role changes, as an append-only audit trail, and the promotion gate whose
criteria each promotion records.

Every change of a model's role — a challenger set or cleared, a promotion through the gate
or by override, a refused promotion, a rollback — is one ``model_role_changes`` row (see
migration 0008): who, when, which version, the champion it replaced, the share it shadows,
the gate's criteria as evaluated and the reason given. No role can change a row once
written.

The gate (:func:`evaluate_gate`) is a pure function of a champion/challenger comparison
from the ledger (:class:`ShadowComparison` names the figures it reads) and the limits in
the settings (:class:`GateLimits`), so it is judged the same way wherever it runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

from config.settings import Settings

if TYPE_CHECKING:
    from ledger.store import Ledger

RoleAction = Literal["challenger_set", "challenger_cleared", "promoted", "promoted_by_override",
                     "promotion_refused", "rolled_back"]
ROLE_ACTIONS: tuple[RoleAction, ...] = ("challenger_set", "challenger_cleared", "promoted",
                                        "promoted_by_override", "promotion_refused",
                                        "rolled_back")
MIN_OVERRIDE_REASON = 10  # characters; the table refuses shorter reasons too


class Figure(Protocol):
    """A measured figure (``ledger.backtest.Estimate`` is one)."""

    @property
    def value(self) -> float: ...


class ShadowComparison(Protocol):
    """What the gate reads of a champion/challenger comparison on the same loans."""

    @property
    def shadowed(self) -> int: ...
    @property
    def matured(self) -> int: ...
    @property
    def champion_auc(self) -> Figure | None: ...
    @property
    def challenger_auc(self) -> Figure | None: ...
    @property
    def challenger_calibration_error(self) -> Figure | None: ...
    @property
    def swap_in_bad_rate(self) -> Figure | None: ...
    @property
    def swap_out_bad_rate(self) -> Figure | None: ...


@dataclass(frozen=True)
class GateLimits:
    """The promotion gate's limits (``CREDITRISK_PROMOTION_*``)."""

    min_matured_loans: int = 500
    auc_tolerance: float = 0.01
    max_calibration_error: float = 0.05

    @classmethod
    def from_settings(cls, settings: Settings) -> GateLimits:
        return cls(settings.promotion_min_matured_loans, settings.promotion_auc_tolerance,
                   settings.promotion_max_calibration_error)


@dataclass(frozen=True)
class Criterion:
    """One criterion as evaluated: its figure, the limit it was held to, and the verdict.
    ``value`` or ``limit`` is None when the ledger has no figure to judge by."""

    name: str
    value: float | None
    limit: float | None
    passed: bool
    explanation: str  # the sentence a user reads

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "value": self.value, "limit": self.limit,
                "passed": self.passed}


def evaluate_gate(comparison: ShadowComparison, limits: GateLimits) -> list[Criterion]:
    """The four criteria of a promotion, each passed or failed (all must pass)."""
    return [_matured(comparison, limits), _auc(comparison, limits),
            _calibration(comparison, limits), _swaps(comparison)]


def _matured(comparison: ShadowComparison, limits: GateLimits) -> Criterion:
    matured, needed = comparison.matured, limits.min_matured_loans
    return Criterion("matured_shadowed_loans", float(matured), float(needed), matured >= needed,
                     f"matured shadowed loans: {matured:,} (at least {needed:,} needed; "
                     f"{comparison.shadowed:,} shadowed)")


def _auc(comparison: ShadowComparison, limits: GateLimits) -> Criterion:
    champion, challenger = comparison.champion_auc, comparison.challenger_auc
    if champion is None or challenger is None:
        return Criterion("realised_auc", None if challenger is None else challenger.value, None,
                         False,
                         "realised AUC: not measurable yet (no matured good and bad loans of "
                         "both models)")
    floor = champion.value - limits.auc_tolerance
    return Criterion("realised_auc", challenger.value, floor, challenger.value >= floor,
                     f"realised AUC: {challenger.value:.4f} against the champion's "
                     f"{champion.value:.4f} (at least {floor:.4f}: no more than "
                     f"{limits.auc_tolerance:g} below)")


def _calibration(comparison: ShadowComparison, limits: GateLimits) -> Criterion:
    error, limit = comparison.challenger_calibration_error, limits.max_calibration_error
    if error is None:
        return Criterion("calibration_error", None, limit, False,
                         f"calibration error: not measurable yet (at most {limit:g} allowed)")
    return Criterion("calibration_error", error.value, limit, error.value <= limit,
                     f"calibration error: {error.value:.4f} (at most {limit:g})")


def _swaps(comparison: ShadowComparison) -> Criterion:
    swap_in, swap_out = comparison.swap_in_bad_rate, comparison.swap_out_bad_rate
    if swap_in is None:  # the challenger approved no matured loan the champion would not
        return Criterion("swap_in_bad_rate", None, None if swap_out is None else swap_out.value,
                         True,
                         "swap-in bad rate: no matured swap-ins (the challenger admitted no "
                         "matured loan the champion would not)")
    if swap_out is None:
        return Criterion("swap_in_bad_rate", swap_in.value, None, False,
                         f"swap-in bad rate: {swap_in.value:.2%} with no matured swap-outs to "
                         "hold it against")
    return Criterion("swap_in_bad_rate", swap_in.value, swap_out.value,
                     swap_in.value <= swap_out.value,
                     f"swap-in bad rate: {swap_in.value:.2%} (at most the swap-out bad rate, "
                     f"{swap_out.value:.2%})")


@dataclass(frozen=True)
class RoleChange:
    """One row of ``model_role_changes``."""

    change_id: int
    changed_at: datetime
    changed_by: str
    action: RoleAction
    model_version: str
    previous_champion: str | None
    percent: float | None
    criteria: tuple[dict[str, object], ...]
    reason: str


_COLUMNS = ("change_id, changed_at, changed_by, action, model_version, previous_champion, "
            "percent, criteria, reason")


def record_change(connection: Ledger, action: RoleAction, model_version: str, changed_by: str,
                  *, previous_champion: str | None = None, percent: float | None = None,
                  criteria: list[Criterion] | None = None, reason: str = "") -> RoleChange:
    """Insert one audit row in the connection's current transaction (the caller commits it
    only once the registry change it records has been made)."""
    row = connection.execute(
        f"INSERT INTO model_role_changes (changed_by, action, model_version, previous_champion,"
        f" percent, criteria, reason) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s)"
        f" RETURNING {_COLUMNS}",
        (changed_by, action, model_version, previous_champion, percent,
         json.dumps([criterion.to_json() for criterion in criteria or []]), reason)).fetchone()
    assert row is not None  # INSERT … RETURNING returns the row it inserted
    return _change(row)


def history(connection: Ledger, limit: int = 50, model_version: str | None = None
            ) -> list[RoleChange]:
    """The latest role changes, newest first (of one version when ``model_version`` is set)."""
    where, params = ("WHERE model_version = %s", (model_version, limit)) if model_version \
        else ("", (limit,))
    rows = connection.execute(f"SELECT {_COLUMNS} FROM model_role_changes {where} "
                              "ORDER BY change_id DESC LIMIT %s", params).fetchall()
    return [_change(row) for row in rows]


def last_champion_change(connection: Ledger) -> RoleChange | None:
    """The latest change that made a version champion (a promotion or a rollback)."""
    row = connection.execute(
        f"SELECT {_COLUMNS} FROM model_role_changes WHERE action IN "
        "('promoted', 'promoted_by_override', 'rolled_back') ORDER BY change_id DESC LIMIT 1"
    ).fetchone()
    return _change(row) if row is not None else None


def _change(row: tuple[object, ...]) -> RoleChange:
    (change_id, changed_at, changed_by, action, version, previous, percent, criteria,
     reason) = row
    assert isinstance(changed_at, datetime) and isinstance(criteria, list)
    return RoleChange(int(str(change_id)), changed_at, str(changed_by), _action(action),
                      str(version), None if previous is None else str(previous),
                      None if percent is None else float(str(percent)),
                      tuple(item for item in criteria if isinstance(item, dict)), str(reason))


def _action(value: object) -> RoleAction:
    for action in ROLE_ACTIONS:
        if value == action:
            return action
    raise ValueError(f"model_role_changes holds an unknown action {value!r}")
