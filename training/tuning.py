"""Choosing LightGBM's settings and number of trees by cross-validation on the training rows.

Every candidate (tree settings, with or without SMOTE at some strength) is trained on the
same stratified folds in lockstep (``lightgbm.cv`` with the folds given), and its number of
trees is where the validation AUC *averaged over the folds*, smoothed over consecutive
rounds, peaks, never below a floor (:func:`chosen_trees`), so neither one lucky slice nor one
noisy round can pick it. On small files the folds are repeated with other shuffles, and the
choices are made against the CV's standard error (:func:`run_search`). SMOTE rows are made
from each fold's training part only and never appear in a validation part. The fold models'
predictions on their own validation rows (out-of-fold) are kept: the pipeline fits the
calibration on them (no rows held back for it) and reports their metrics as the
cross-validation figures of the chosen procedure.

Candidates run in order until the time budget is spent; the first of each stage always runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    probabilities (aligned with the validator's positions; with repeated folds, the mean of
    each row's predictions over the repeats)."""

    candidate: Candidate
    trees: int
    mean_auc: float
    fold_aucs: list[float]
    seconds: float
    out_of_fold: np.ndarray = field(repr=False)
    synthetic_rows_per_fold: int = 0
    folds_per_repeat: int = 0

    @property
    def auc_std(self) -> float:
        return float(np.std(self.fold_aucs, ddof=1)) if len(self.fold_aucs) > 1 else 0.0

    @property
    def auc_se(self) -> float:
        """Standard error of the mean CV AUC, taken as one K-fold pass's (std over the folds
        / sqrt(K)): repeats of the same rows are not independent, so they do not shrink it."""
        per_repeat = self.folds_per_repeat or len(self.fold_aucs)
        return self.auc_std / float(np.sqrt(max(per_repeat, 1)))

    def to_dict(self) -> JSONObject:
        return {**self.candidate.to_dict(), "trees": self.trees, "cv_auc": self.mean_auc,
                "cv_auc_std": self.auc_std, "cv_auc_se": self.auc_se,
                "cv_folds": len(self.fold_aucs), "seconds": round(self.seconds, 2)}


@dataclass
class SearchResult:
    """The candidates tried (the one kept in ``best``), those the budget left out, and the
    rule that kept it."""

    best: CandidateScore
    tried: list[CandidateScore]
    skipped: list[Candidate]
    rule: str = "highest mean CV AUC"

    def to_dict(self) -> JSONObject:
        return {"chosen": self.best.to_dict(), "tried": [s.to_dict() for s in self.tried],
                "skipped_for_time": [c.to_dict() for c in self.skipped], "rule": self.rule}


class CrossValidator:
    """Stratified folds over the training rows (repeated ``search.cv_repeats`` times with
    other shuffles) and the cross-validation of one candidate."""

    def __init__(self, matrix: np.ndarray, label: np.ndarray, positions: np.ndarray,
                 categorical_indices: Sequence[int], config: TrainingConfig) -> None:
        from sklearn.model_selection import RepeatedStratifiedKFold

        self.features = as_float32_values(matrix[positions])
        self.label = np.asarray(label[positions]).astype(int)
        self.categorical_indices = list(categorical_indices)
        self.config = config
        self.repeats = max(1, config.search.cv_repeats)
        if self.repeats == 1:
            from sklearn.model_selection import StratifiedKFold

            splitter: Any = StratifiedKFold(config.folds, shuffle=True,
                                            random_state=config.seed)
        else:
            splitter = RepeatedStratifiedKFold(n_splits=config.folds, n_repeats=self.repeats,
                                               random_state=config.seed)
        self.folds = [(np.sort(fit), np.sort(valid))
                      for fit, valid in splitter.split(self.features, self.label)]
        # The first repeat's folds (the cross-fitted calibration's folds).
        self.fold_of_row = np.empty(len(self.label), dtype=int)
        for fold, (_, valid) in enumerate(self.folds[:config.folds]):
            self.fold_of_row[valid] = fold

    @property
    def bad_to_good(self) -> float:
        """The training rows' own bad:good ratio (what SMOTE oversamples from)."""
        bad = int(self.label.sum())
        return bad / max(len(self.label) - bad, 1)

    def score(self, candidate: Candidate, progress: bool = False) -> CandidateScore:
        """Cross-validate ``candidate``: trees where the smoothed mean validation AUC peaks,
        never fewer than ``min_trees``."""
        settings = self.config.lightgbm.with_trees(candidate.trees)
        return self._cross_validate(candidate, settings, progress, fixed_rounds=None)

    def score_fixed(self, candidate: Candidate, settings: LightGBMSettings,
                    progress: bool = False) -> CandidateScore:
        """Cross-validate fixed ``settings`` with all their ``max_rounds`` trees (no early
        stopping): the fixed reference on the search's own folds."""
        return self._cross_validate(candidate, settings, progress,
                                    fixed_rounds=settings.max_rounds)

    def _cross_validate(self, candidate: Candidate, settings: LightGBMSettings,
                        progress: bool, fixed_rounds: int | None) -> CandidateScore:
        import lightgbm as lgb

        started = time.perf_counter()
        features, label, folds, synthetic = self._fold_data(candidate.smote)
        data = lgb.Dataset(features, label, categorical_feature=self.categorical_indices or "auto",
                           free_raw_data=False)
        stopping = MeanAucStopping(settings.early_stopping_rounds, settings.min_rounds,
                                   settings.smoothing_rounds)
        callbacks: list[Any] = [stopping] if fixed_rounds is None else []
        rounds = fixed_rounds or settings.max_rounds
        bar = _RoundsBar(candidate.describe(), rounds, progress)
        try:
            result = lgb.cv(settings.params(self.config.seed, len(folds[0][0])), data,
                            num_boost_round=rounds, folds=folds,
                            callbacks=[*callbacks, bar.callback], return_cvbooster=True,
                            eval_train_metric=False)
        finally:
            bar.close()
        boosters, curve = result["cvbooster"], result["valid auc-mean"]
        assert isinstance(boosters, lgb.CVBooster) and isinstance(curve, list), \
            "lgb.cv returns the fold boosters (return_cvbooster) and the mean AUC per round"
        trees = fixed_rounds or chosen_trees(stopping.curve, settings.smoothing_rounds,
                                             settings.min_trees)
        total = np.zeros(len(self.label))
        fold_aucs = []
        for booster, (_, valid) in zip(boosters.boosters, folds, strict=True):
            predicted = np.asarray(booster.predict(self.features[valid], num_iteration=trees))
            total[valid] += predicted
            fold_aucs.append(evaluate_probabilities(self.label[valid], predicted).auc)
        out_of_fold = total / self.repeats
        return CandidateScore(candidate, trees, float(np.mean(fold_aucs)), fold_aucs,
                              time.perf_counter() - started, out_of_fold, synthetic,
                              self.config.folds)

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


def chosen_trees(curve: Sequence[float], smoothing: int, floor: int) -> int:
    """The number of trees where the fold-mean AUC, averaged over ``smoothing`` consecutive
    rounds (a centred window), peaks, but at least ``floor`` (or every round trained, if
    fewer). A single round's maximum is noise on a flat curve; the floor keeps a small file
    from a handful of trees when its curve peaks early by chance."""
    values = np.asarray(curve, dtype=np.float64)
    if len(values) == 0:
        return 1
    window = max(1, min(smoothing, len(values)))
    smoothed = np.convolve(values, np.ones(window) / window, mode="valid")
    peak = int(np.argmax(smoothed)) + window // 2 + 1  # rounds are 1-based tree counts
    return int(min(max(peak, floor), len(values)))


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
               progress: bool, log: Log, switch_margin_se: float = 0.0,
               against: CandidateScore | None = None) -> SearchResult:
    """Cross-validate ``candidates`` in order while time is left, then keep one:

    - with ``against`` (the plain model, for SMOTE strengths): the highest mean CV AUC among
      those costing at most one CV standard error against it (the highest overall when none
      does);
    - else the highest mean CV AUC, except that the first candidate stays unless another
      beats it by more than ``switch_margin_se`` CV standard errors.
    """
    tried: list[CandidateScore] = []
    skipped: list[Candidate] = []
    for candidate in candidates:
        expected = tried[-1].seconds if tried else 0.0
        if tried and time.monotonic() + expected > deadline:
            skipped.append(candidate)
            continue
        score = validator.score(candidate, progress)
        log(f"  {candidate.describe()}: CV AUC {score.mean_auc:.4f} "
            f"± {score.auc_se:.4f} (s.e., {len(score.fold_aucs)} folds) at {score.trees} "
            f"trees ({score.seconds:.1f}s)")
        tried.append(score)
    if skipped:
        log(f"  {len(skipped)} candidate(s) skipped: the search budget is spent")
    if against is not None:
        best, rule = _within_one_se(tried, against)
    else:
        best, rule = _best_with_margin(tried, switch_margin_se)
    return SearchResult(best, tried, skipped, rule)


def _within_one_se(tried: Sequence[CandidateScore], plain: CandidateScore
                   ) -> tuple[CandidateScore, str]:
    affordable = [score for score in tried if plain.mean_auc - score.mean_auc <= plain.auc_se]
    rule = ("highest mean CV AUC among the strengths costing at most one CV standard error "
            "against no resampling")
    if not affordable:
        return max(tried, key=lambda score: score.mean_auc), \
            rule + " (none did: the highest mean CV AUC)"
    return max(affordable, key=lambda score: score.mean_auc), rule


def _best_with_margin(tried: Sequence[CandidateScore], margin_se: float
                      ) -> tuple[CandidateScore, str]:
    best = max(tried, key=lambda score: score.mean_auc)
    if margin_se <= 0:
        return best, "highest mean CV AUC"
    first = tried[0]
    rule = (f"the first candidate unless another's mean CV AUC is higher by more than "
            f"{margin_se:g} CV standard error")
    if best.mean_auc - first.mean_auc > margin_se * first.auc_se:
        return best, rule
    return first, rule


def cross_fitted_probabilities(out_of_fold_raw: np.ndarray, label: np.ndarray,
                               fold_of_row: np.ndarray) -> np.ndarray:
    """Calibrated out-of-fold PDs, each fold's rows calibrated on the other folds' rows only:
    what a model of this procedure would say of rows it never saw (the test figures when
    the final model is fitted on every labelled row)."""
    from onnx_models.policy import apply_calibration
    from training.calibration import fit_platt

    calibrated = np.empty(len(label))
    for fold in np.unique(fold_of_row):
        inside = fold_of_row == fold
        calibration = fit_platt(out_of_fold_raw[~inside], label[~inside])
        calibrated[inside] = apply_calibration(out_of_fold_raw[inside], calibration)
    return calibrated


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
