"""Decision thresholds from the cost of a bad loan versus the cost of rejecting a good one.

Approving an applicant with probability of default p costs ``p * cost_bad_loan`` in
expectation; declining costs ``(1 - p) * cost_rejected_good``. They are equal at the
break-even PD ``cost_rejected_good / (cost_bad_loan + cost_rejected_good)``. A review band
of ``± review_band_fraction`` around it goes to a person instead of being decided outright.
"""

from __future__ import annotations

from typing import TypedDict


class CostThresholds(TypedDict):
    """The model.json ``thresholds`` entry: the decision band and the costs that set it."""

    approve_below: float
    decline_at_or_above: float
    break_even_pd: float
    cost_bad_loan: float
    cost_rejected_good: float
    review_band_fraction: float
    rule: str


def thresholds_from_costs(cost_bad_loan: float, cost_rejected_good: float,
                          review_band_fraction: float) -> CostThresholds:
    """The model.json ``thresholds`` entry."""
    if cost_bad_loan <= 0 or cost_rejected_good <= 0:
        raise ValueError("costs must be positive: cost_bad_loan is the loss on a loan that "
                         "goes bad, cost_rejected_good the margin lost by declining a good one")
    if not 0 <= review_band_fraction < 1:
        raise ValueError(f"review_band_fraction must be in [0, 1), got {review_band_fraction}")
    break_even = cost_rejected_good / (cost_bad_loan + cost_rejected_good)
    return {
        "approve_below": break_even * (1.0 - review_band_fraction),
        "decline_at_or_above": break_even * (1.0 + review_band_fraction),
        "break_even_pd": break_even,
        "cost_bad_loan": cost_bad_loan,
        "cost_rejected_good": cost_rejected_good,
        "review_band_fraction": review_band_fraction,
        "rule": "approve if PD < approve_below; decline if PD >= decline_at_or_above; "
                "otherwise review",
    }
