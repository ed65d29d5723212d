"""Choosing LightGBM's settings and number of trees by cross-validation on the training rows.

Every candidate (tree settings, with or without SMOTE at some strength) is trained on the
same stratified folds in lockstep (``lightgbm.cv`` with the folds given), and its number of
trees is where the validation AUC *averaged over the folds* peaks, so one lucky slice cannot
pick it. SMOTE rows are made from each fold's training part only and never appear in a
validation part. The fold models' predictions on their own validation rows (out-of-fold)
are kept: the pipeline fits the calibration on them (no rows held back for it) and reports
their metrics as the cross-validation figures of the chosen procedure.

Candidates run in order until the time budget is spent; the first of each stage always runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from config.json_types import JSONObject
from training.evaluate import FoldSummary, evaluate_probabilities, summarize_folds
from training.model import as_float32_values
from training.training_config import LightGBMSettings, SmoteSettings, TrainingConfig, TreeSettings

if TYPE_CHECKING:
    from lightgbm import EvalResult
    from lightgbm.callback import CallbackEnv

Log = Callable[[str], None]


@dataclass(frozen=True)
class Candidate:
    """One procedure the search can pick: tree settings, and SMOTE settings or none."""

    trees: TreeSettings
    smote: SmoteSettings | None = None

    def describe(self) -> str:
        resampling = self.smote.describe() if self.smote else "no resampling"
        return f"{self.trees.describe()}; {resampling}"

    def to_dict(self) -> JSONObject:
        return {"num_leaves": self.trees.num_leaves,
                "min_child_samples": self.trees.min_child_samples,
                "reg_lambda": self.trees.reg_lambda,
                "smote_sampling_strategy": self.smote.sampling_strategy if self.smote else None,
                "smote_k_neighbors": self.smote.k_neighbors if self.smote else None}


@dataclass
class CandidateScore:
    """A candidate's cross-validation: trees chosen, mean and per-fold AUC, out-of-fold raw
    probabilities (aligned with the validator's positions)."""

    candidate: Candidate
    trees: int
    mean_auc: float
    fold_aucs: list[float]
    seconds: float
    out_of_fold: np.ndarray = field(repr=False)
    synthetic_rows_per_fold: int = 0

    def to_dict(self) -> JSONObject:
        return {**self.candidate.to_dict(), "trees": self.trees, "cv_auc": self.mean_auc,
                "cv_auc_std": float(np.std(self.fold_aucs, ddof=1)),
                "seconds": round(self.seconds, 2)}


@dataclass
class SearchResult:
    """The candidates tried (best first in ``best``) and those the budget left out."""

    best: CandidateScore
    tried: list[CandidateScore]
    skipped: list[Candidate]

    def to_dict(self) -> JSONObject:
        return {"chosen": self.best.to_dict(), "tried": [s.to_dict() for s in self.tried],
                "skipped_for_time": [c.to_dict() for c in self.skipped]}


class CrossValidator:
    """Stratified folds over the training rows and the cross-validation of one candidate."""

    def __init__(self, matrix: np.ndarray, label: np.ndarray, positions: np.ndarray,
                 categorical_indices: Sequence[int], config: TrainingConfig) -> None:
        from sklearn.model_selection import StratifiedKFold

        self.features = as_float32_values(matrix[positions])
        self.label = np.asarray(label[positions]).astype(int)
        self.categorical_indices = list(categorical_indices)
        self.config = config
        folds = StratifiedKFold(config.folds, shuffle=True, random_state=config.seed)
        self.folds = [(np.sort(fit), np.sort(valid))
                      for fit, valid in folds.split(self.features, self.label)]
        self.fold_of_row = np.empty(len(self.label), dtype=int)
        for fold, (_, valid) in enumerate(self.folds):
            self.fold_of_row[valid] = fold

    @property
    def bad_to_good(self) -> float:
        """The training rows' own bad:good ratio (what SMOTE oversamples from)."""
        bad = int(self.label.sum())
        return bad / max(len(self.label) - bad, 1)

    def score(self, candidate: Candidate, progress: bool = False) -> CandidateScore:
        """Cross-validate ``candidate``: trees where the mean validation AUC peaks."""
        import lightgbm as lgb

        started = time.perf_counter()
        features, label, folds, synthetic = self._fold_data(candidate.smote)
        settings: LightGBMSettings = self.config.lightgbm.with_trees(candidate.trees)
        data = lgb.Dataset(features, label, categorical_feature=self.categorical_indices or "auto",
                           free_raw_data=False)
        stopping = MeanAucStopping(settings.early_stopping_rounds, settings.min_rounds,
                                   settings.smoothing_rounds)
        bar = _RoundsBar(candidate.describe(), settings.max_rounds, progress)
        try:
            result = lgb.cv(settings.params(self.config.seed, len(folds[0][0])), data,
                            num_boost_round=settings.max_rounds, folds=folds,
                            callbacks=[stopping, bar.callback], return_cvbooster=True,
                            eval_train_metric=False)
        finally:
            bar.close()
        boosters, curve = result["cvbooster"], result["valid auc-mean"]
        assert isinstance(boosters, lgb.CVBooster) and isinstance(curve, list), \
            "lgb.cv returns the fold boosters (return_cvbooster) and the mean AUC per round"
        trees = int(boosters.best_iteration or len(curve))
        out_of_fold = np.empty(len(self.label))
        for booster, (_, valid) in zip(boosters.boosters, self.folds, strict=True):
            out_of_fold[valid] = booster.predict(self.features[valid], num_iteration=trees)
        fold_aucs = [evaluate_probabilities(self.label[valid], out_of_fold[valid]).auc
                     for _, valid in self.folds]
        return CandidateScore(candidate, trees, float(np.mean(fold_aucs)), fold_aucs,
                              time.perf_counter() - started, out_of_fold, synthetic)

    def _fold_data(self, smote: SmoteSettings | None
                   ) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]], int]:
        """All rows any fold trains on: the real rows, then each fold's synthetic rows
        (made from that fold's training part), with the folds as index pairs into them."""
        if smote is None:
            return self.features, self.label, self.folds, 0
        from training.resampling import MissingAwareSMOTE

        parts, labels, folds = [self.features], [self.label], []
        offset = len(self.label)
        for fold, (fit, valid) in enumerate(self.folds):
            sampler = MissingAwareSMOTE(self.categorical_indices, smote.sampling_strategy,
                                        smote.k_neighbors, random_state=self.config.seed + fold)
            resampled, resampled_label = sampler.fit_resample(self.features[fit],
                                                              self.label[fit])
            added = resampled[len(fit):]
            parts.append(as_float32_values(added))
            labels.append(resampled_label[len(fit):])
            folds.append((np.concatenate([fit, np.arange(offset, offset + len(added))]), valid))
            offset += len(added)
        synthetic = (offset - len(self.label)) // len(self.folds)
        return np.vstack(parts), np.concatenate(labels), folds, synthetic


class MeanAucStopping:
    """LightGBM callback: the number of trees is where the fold-mean validation AUC,
    smoothed over ``smoothing`` consecutive rounds, peaks. Training stops ``patience`` rounds
    after that peak, but not before ``min_rounds``: on a small file the mean AUC often dips
    early and recovers, and stopping at the dip would keep a handful of trees."""

    order = 30  # where LightGBM runs its own early stopping among callbacks

    def __init__(self, patience: int, min_rounds: int, smoothing: int) -> None:
        self.patience, self.min_rounds, self.smoothing = patience, min_rounds, smoothing
        self.curve: list[float] = []
        self.results: list[list[EvalResult]] = []
        self.best_round, self.best_auc = 0, -np.inf

    def __call__(self, env: CallbackEnv) -> None:
        import lightgbm as lgb

        evaluation = list(env.evaluation_result_list or [])
        self.curve.append(next(entry[2] for entry in evaluation if entry[1] == "auc"))
        self.results.append(evaluation)
        window = min(self.smoothing, len(self.curve))
        centre = len(self.curve) - 1 - window // 2
        smoothed = float(np.mean(self.curve[-window:]))
        if smoothed > self.best_auc:
            self.best_round, self.best_auc = centre, smoothed
        rounds = env.iteration + 1
        last = env.iteration == env.end_iteration - 1
        if last or (rounds >= self.min_rounds and rounds - 1 - self.best_round >= self.patience):
            raise lgb.callback.EarlyStopException(self.best_round, self.results[self.best_round])


class _RoundsBar:
    """A tqdm bar counting boosting rounds of one candidate (long on big files)."""

    def __init__(self, description: str, total: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=f"  CV {description}", unit="round", leave=False,
                        disable=not enabled)

    def callback(self, env: CallbackEnv) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def smote_candidates(trees: TreeSettings, bad_to_good: float,
                     config: TrainingConfig) -> list[Candidate]:
    """SMOTE strengths worth trying on these rows, in the order the search tries them."""
    search = config.search
    ratios = [min(1.0, bad_to_good * factor) for factor in search.smote_oversampling_factors]
    if search.smote_balanced:
        ratios.append(1.0)
    # A target at or below today's ratio would add no row; a 1.05× one barely any.
    useful = list(dict.fromkeys(round(r, 3) for r in ratios if r > bad_to_good * 1.05))
    return [Candidate(trees, SmoteSettings(ratio, k))
            for k in search.smote_k_neighbors for ratio in useful]


def run_search(validator: CrossValidator, candidates: Sequence[Candidate], deadline: float,
               progress: bool, log: Log) -> SearchResult:
    """Cross-validate ``candidates`` in order while time is left; the best mean AUC wins."""
    tried: list[CandidateScore] = []
    skipped: list[Candidate] = []
    for candidate in candidates:
        expected = tried[-1].seconds if tried else 0.0
        if tried and time.monotonic() + expected > deadline:
            skipped.append(candidate)
            continue
        score = validator.score(candidate, progress)
        log(f"  {candidate.describe()}: CV AUC {score.mean_auc:.4f} "
            f"± {np.std(score.fold_aucs, ddof=1):.4f} at {score.trees} trees "
            f"({score.seconds:.1f}s)")
        tried.append(score)
    if skipped:
        log(f"  {len(skipped)} candidate(s) skipped: the search budget is spent")
    best = max(tried, key=lambda score: score.mean_auc)
    return SearchResult(best, tried, skipped)


def cross_fitted_metrics(out_of_fold_raw: np.ndarray, label: np.ndarray,
                         fold_of_row: np.ndarray, bins: int = 10) -> FoldSummary:
    """Per-fold metrics of calibrated out-of-fold predictions, each fold calibrated on the
    other folds' predictions only (so ECE and Brier are not judged on the rows that set the
    calibration), summarised as mean ± std."""
    from onnx_models.policy import apply_calibration
    from training.calibration import fit_platt

    results = []
    for fold in np.unique(fold_of_row):
        inside = fold_of_row == fold
        calibration = fit_platt(out_of_fold_raw[~inside], label[~inside])
        results.append(evaluate_probabilities(
            label[inside], apply_calibration(out_of_fold_raw[inside], calibration), bins))
    return summarize_folds(results)
