"""`creditrisk worker` with a fault forced into the feature encoder (``infra.faults.injected_worker``),
as a script for the failure-policy tests: any record whose loan amount is POISON_AMOUNT makes
encoding raise. Everything else is the real worker on the real stack."""

from __future__ import annotations

from infra.faults.injected_worker import POISON_AMOUNT, main

__all__ = ["POISON_AMOUNT"]

if __name__ == "__main__":
    main()
