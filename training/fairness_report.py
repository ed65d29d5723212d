"""The training report's fairness section: approval rate, adverse impact and parity, AUC and
calibration by group on the test rows, for the attributes the dataset config monitors.

The monitored columns (e.g. Home Credit's CODE_GENDER and DAYS_BIRTH) stay beside the training
rows but are never features; here they are read once more, only to name each test row's group
with the same :meth:`fairness.spec.MonitoredAttribute.group_of` the worker uses on the stream,
so a group means the same thing in the report, on the dashboards and in the back-test. The
figures are :func:`fairness.frames.outcomes_by_group`'s (fairlearn's MetricFrame, the
intervals of :mod:`fairness.stats`).

- :func:`fairness_on_rows` → the model card's ``fairness`` entry (JSON-ready);
- :func:`fairness_section_html` → the report's "Fairness" section from that entry;
- :func:`approval_rate_by_group` → the figure of approval rates with their intervals and the
  four-fifths line of each attribute.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from config.json_types import JSONObject, JSONValue
from fairness.frames import APPROVED, BAD, PREDICTED, GroupOutcomes, outcomes_by_group
from fairness.spec import UNKNOWN, MonitoredAttribute, MonitoringSpec
from training.evaluate import expected_calibration_error

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FAIRNESS_PLOT = "fairness_approval_rate"
NO_ATTRIBUTES = "The dataset config declares no monitored attributes: nothing is monitored."
TEST_ROWS = ("the test set (rows held out from the search, the fit and the calibration)")


def fairness_on_rows(rows: pd.DataFrame, probabilities: np.ndarray, approved: np.ndarray,
                     bad: np.ndarray, spec: MonitoringSpec, date_column: str | None,
                     population: str = TEST_ROWS, calibration_bins: int = 10) -> JSONObject:
    """The model card's ``fairness`` entry for ``rows`` (raw monitored columns included), their
    calibrated PDs, whether each was approved at the card's thresholds and whether it turned
    out bad. A row whose monitored value is missing or outside the declared values or bands
    counts as ``unknown``; with a ``date_column`` a birth date is aged on the row's date."""
    lengths = {len(rows), len(probabilities), len(approved), len(bad)}
    if len(lengths) != 1:
        raise ValueError(f"rows ({len(rows)}), probabilities ({len(probabilities)}), approved "
                         f"({len(approved)}) and bad ({len(bad)}) must describe the same rows")
    entry: JSONObject = {
        "spec": _json(spec.to_card()),
        "rows": _rows_text(len(rows), population, spec),
        "monitored_not_used": monitored_not_used(spec),
        "note": spec.note or ("" if spec.attributes else NO_ATTRIBUTES),
        "attributes": [],
    }
    if not spec.attributes:
        return entry
    frame = _group_frame(rows, probabilities, approved, bad, spec, date_column)
    outcomes = outcomes_by_group(frame, spec, lambda y_bad, y_pd: expected_calibration_error(
        y_bad, y_pd, calibration_bins))
    entry["attributes"] = [_attribute_entry(attribute, [outcome for outcome in outcomes
                                                        if outcome.attribute == attribute.name],
                                            spec)
                           for attribute in spec.attributes]
    return entry


def monitored_not_used(spec: MonitoringSpec) -> str:
    """'gender (CODE_GENDER), age band (DAYS_BIRTH)': what the card lists as monitored."""
    return ", ".join(f"{attribute.title.lower()} ({attribute.field})"
                     for attribute in spec.attributes)


def _rows_text(count: int, population: str, spec: MonitoringSpec) -> str:
    if not spec.attributes:
        return f"{count:,} rows of {population}; no attribute is monitored."
    return (f"{count:,} rows of {population}, each decided at the model card's thresholds "
            "(approved: the decision 'approve'; review and decline count as not approved), with "
            "its calibrated probability of default and its observed outcome. Each row's group "
            "comes from its raw monitored column, read for this section only (never a feature); "
            "a missing value or one outside the declared values or bands is 'unknown'. A group "
            f"(and its reference) is judged only from {spec.min_group_size:,} rows; intervals "
            f"at {spec.confidence:.0%} confidence (approval rate: Wilson; adverse impact ratio: "
            "Katz log; parity difference: Newcombe).")


def _group_frame(rows: pd.DataFrame, probabilities: np.ndarray, approved: np.ndarray,
                 bad: np.ndarray, spec: MonitoringSpec, date_column: str | None) -> pd.DataFrame:
    """One column per attribute (its group), with the columns outcomes_by_group reads."""
    dates = _row_dates(rows, date_column)
    frame = pd.DataFrame({APPROVED: np.asarray(approved).astype(bool),
                          PREDICTED: np.asarray(probabilities, dtype=np.float64),
                          BAD: np.asarray(bad, dtype=np.float64)})
    for attribute in spec.attributes:
        frame[attribute.name] = groups_of_column(attribute, rows, dates)
    return frame


def groups_of_column(attribute: MonitoredAttribute, rows: pd.DataFrame,
                     dates: Sequence[datetime | None]) -> list[str]:
    """Each row's group of ``attribute`` (``unknown`` for all when its column is absent)."""
    if attribute.field not in rows.columns:
        return [UNKNOWN] * len(rows)
    values = rows[attribute.field].to_numpy(dtype=object)
    return [attribute.group_of(_plain(value), on) for value, on in zip(values, dates, strict=True)]


def _plain(value: object) -> object:
    """numpy scalars as Python numbers and pandas' missing markers as None, as an event's JSON
    value would arrive."""
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _row_dates(rows: pd.DataFrame, date_column: str | None) -> list[datetime | None]:
    """Each row's application date (for a birth date's age), None without a usable one."""
    if not date_column or date_column not in rows.columns:
        return [None] * len(rows)
    parsed = pd.to_datetime(rows[date_column], errors="coerce", utc=True)
    return [None if pd.isna(stamp) else stamp.to_pydatetime() for stamp in parsed]


def _attribute_entry(attribute: MonitoredAttribute, outcomes: list[GroupOutcomes],
                     spec: MonitoringSpec) -> JSONObject:
    flagged = [outcome.group for outcome in outcomes if not outcome.figures.is_reference
               and outcome.figures.adverse_impact_below(spec.air_threshold)]
    total = sum(outcome.figures.decisions for outcome in outcomes)
    unknown = sum(outcome.figures.decisions for outcome in outcomes if outcome.group == UNKNOWN)
    return {"name": attribute.name, "label": attribute.title, "field": attribute.field,
            "reference": attribute.reference, "rows": total, "unknown": unknown,
            "unknown_share": unknown / total if total else None,
            "adverse_impact_flagged": _json(flagged),
            "groups": _json([_group_entry(outcome) for outcome in outcomes])}


def _group_entry(outcome: GroupOutcomes) -> dict[str, object]:
    """A group's figures; the reference group's ratio and difference to itself are left out
    (as on the stream, where the reference has no such series)."""
    figures = outcome.to_dict()
    if outcome.figures.is_reference:
        figures |= {"adverse_impact_ratio": None, "parity_difference": None,
                    "equal_opportunity_gap": None}
    return figures


def _json(value: object) -> JSONValue:
    """Plain JSON values (numpy numbers as Python's, NaN as None)."""
    if isinstance(value, Mapping):
        return {str(key): _json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"not a JSON value: {type(value).__name__}")


# -- the report's section ------------------------------------------------------------------
HEADER = ("group", "test loans", "approved", "approval rate [CI]", "adverse impact ratio [CI]",
          "parity difference [CI]", "bad loans", "AUC", "calibration error",
          "approval rate of good loans", "equal-opportunity gap")


def fairness_section_html(card: Mapping[str, Any], figures: str = "") -> str:
    """The report's "Fairness" section from the card's ``fairness`` entry: one table per
    attribute; a group below the minimum size shows its count only, marked not judged; an
    adverse impact ratio whose upper bound is below the threshold is flagged. ``figures`` is
    the section's embedded plot (HTML), if any."""
    entry = card.get("fairness")
    if not isinstance(entry, Mapping):
        return ("<h2>Fairness</h2><p>This model card has no fairness figures (it was trained "
                "before fairness monitoring).</p>")
    attributes = entry.get("attributes") or []
    note = entry.get("note") or ""
    if not attributes:
        return f"<h2>Fairness</h2><p>{html.escape(str(note or NO_ATTRIBUTES))}</p>"
    spec = entry["spec"]
    parts = [f"<h2>Fairness (monitored, not used: {html.escape(entry['monitored_not_used'])})"
             "</h2>", f"<p>{html.escape(entry['rows'])}</p>"]
    if note:
        parts.append(f"<p>{html.escape(str(note))}</p>")
    for attribute in attributes:
        parts.append(_attribute_html(attribute, spec))
    if figures:
        parts.append(f'<div class="plots">{figures}</div>')
    return "\n".join(parts)


def _attribute_html(attribute: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
    threshold, minimum = float(spec["air_threshold"]), int(spec["min_group_size"])
    title = (f"<h3>{html.escape(attribute['label'])} ({html.escape(attribute['field'])}), "
             f"reference group {html.escape(attribute['reference'])}</h3>")
    flagged = attribute.get("adverse_impact_flagged") or []
    warning = "".join(
        f'<p class="warning"><b>Adverse impact:</b> the approval rate of group '
        f"{html.escape(group)} is below {threshold:g} of the reference group's even at the "
        "upper bound of its interval.</p>" for group in flagged)
    head = "".join(f"<th>{html.escape(name)}</th>" for name in HEADER)
    body = "".join(_group_row(group, threshold, minimum) for group in attribute["groups"])
    unknown = (f"<p>{attribute['unknown']:,} of {attribute['rows']:,} rows "
               f"({attribute['unknown_share']:.1%}) have no usable value (group unknown).</p>"
               if attribute.get("unknown") else "")
    return (f"{title}{warning}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            f"</table>{unknown}")


def _group_row(group: Mapping[str, Any], threshold: float, minimum: int) -> str:
    name, count = html.escape(group["group"]), f"{group['decisions']:,}"
    if not group["judged"]:
        why = ("never judged (no usable value)" if group["group"] == UNKNOWN else
               f"not judged: fewer than {minimum:,} rows in the group or its reference")
        return (f'<tr class="not-judged"><td>{name}</td><td>{count}</td>'
                f'<td colspan="{len(HEADER) - 2}">{why}</td></tr>')
    reference = group["group"] == group["reference"]
    air_high = group["adverse_impact_ratio"][2] if group["adverse_impact_ratio"] else None
    flagged = not reference and air_high is not None and air_high < threshold
    air = "reference" if reference else _interval(group["adverse_impact_ratio"])
    cells = [name, count, f"{group['approved']:,}", _interval(group["approval_rate"]),
             air + (f" (below {threshold:g})" if flagged else ""),
             "reference" if reference else _interval(group["parity_difference"]),
             f"{group['matured_bad']:,}", _number(group["auc"]),
             _number(group["calibration_error"]), _number(group["good_approval_rate"]),
             "reference" if reference else _number(group["equal_opportunity_gap"])]
    tds = "".join(f'<td class="warning">{cell}</td>' if flagged and index == 4 else
                  f"<td>{cell}</td>" for index, cell in enumerate(cells))
    return f"<tr>{tds}</tr>"


def _interval(values: Sequence[float] | None) -> str:
    if not values:
        return "–"
    value, low, high = values
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


# -- the figure ----------------------------------------------------------------------------
def approval_rate_by_group(entry: Mapping[str, Any]) -> Figure:
    """Approval rate of each judged group with its interval, one panel per attribute, and the
    four-fifths line (the threshold times the reference group's rate); groups not judged are
    named with their count, without a bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training.report_plots import PALETTE

    attributes = entry["attributes"]
    threshold = float(entry["spec"]["air_threshold"])
    figure, axes_list = plt.subplots(1, len(attributes), figsize=(5.0 * len(attributes), 4.0),
                                     dpi=100, squeeze=False)
    for axes, attribute in zip(axes_list[0], attributes, strict=True):
        axes.grid(alpha=0.3)
        groups = attribute["groups"]
        labels = [group["group"] if group["judged"] else
                  f"{group['group']}\n(n={group['decisions']:,},\nnot judged)" for group in groups]
        rates = [group["approval_rate"][0] if group["judged"] else 0.0 for group in groups]
        errors = np.array([[group["approval_rate"][0] - group["approval_rate"][1],
                            group["approval_rate"][2] - group["approval_rate"][0]]
                           if group["judged"] else [0.0, 0.0] for group in groups]).T
        colours = [PALETTE["bad"] if group["group"] in attribute["adverse_impact_flagged"]
                   else PALETTE["calibrated"] for group in groups]
        positions = np.arange(len(groups))
        axes.bar(positions, rates, color=colours, yerr=errors, capsize=4)
        reference = next((group for group in groups
                          if group["group"] == attribute["reference"] and group["judged"]), None)
        if reference is not None:
            axes.axhline(threshold * reference["approval_rate"][0], color="k", linestyle="--",
                         lw=0.9, label=f"{threshold:g} × reference ({attribute['reference']})")
            axes.legend(fontsize=8)
        axes.set_xticks(positions, labels, fontsize=8)
        axes.set(title=f"Approval rate by {attribute['label'].lower()} (test set)",
                 ylabel="approval rate", ylim=(0, 1))
    figure.tight_layout()
    return figure


def write_fairness_plot(folder: Path, entry: Mapping[str, Any]) -> Path | None:
    """``folder/fairness_approval_rate.png``; None when nothing is monitored."""
    if not entry.get("attributes"):
        return None
    import matplotlib.pyplot as plt

    figure = approval_rate_by_group(entry)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{FAIRNESS_PLOT}.png"
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)
    return path
