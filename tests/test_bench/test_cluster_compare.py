"""The single-vs-cluster comparison's figures and table, from made-up samples (no server)."""

from __future__ import annotations

import math

import pytest

from infra.bench.cluster_compare import (
    MEASURES,
    Sample,
    figure,
    ladder_percentiles,
    markdown_table,
    summarize,
)


def drains(single: list[float], cluster: list[float]) -> list[Sample]:
    """The worker's drain rate of each round on each stack."""
    return ([Sample("worker", "single", r, v) for r, v in enumerate(single, start=1)]
            + [Sample("worker", "cluster", r, v) for r, v in enumerate(cluster, start=1)])


def test_the_ratio_is_cluster_over_single_of_the_medians() -> None:
    (row,) = summarize(drains([3_000.0, 2_000.0, 2_600.0], [1_300.0, 1_000.0, 1_200.0]))
    assert row.single_median == 2_600.0
    assert row.cluster_median == 1_200.0
    assert row.ratio == pytest.approx(1_200 / 2_600)


def test_each_round_is_compared_with_the_same_round_on_the_other_stack() -> None:
    (row,) = summarize(drains([3_000.0, 1_500.0], [1_500.0, 1_500.0]))
    assert row.round_ratios == (0.5, 1.0)


def test_a_round_missing_on_one_stack_gives_no_round_ratio() -> None:
    samples = drains([3_000.0, 2_000.0], [1_500.0])
    (row,) = summarize(samples)
    assert row.round_ratios == (0.5,)
    assert row.cluster == (1_500.0,)


def test_a_measure_taken_on_one_stack_only_has_no_ratio() -> None:
    (row,) = summarize([Sample("worker_cpu", "single", 1, 0.31)])
    assert math.isnan(row.ratio)
    assert "| – |" in markdown_table([row], processes=2)


def test_rows_follow_the_order_of_the_measures_and_skip_unmeasured_ones() -> None:
    samples = [Sample("1000_p99", "single", 1, 90.0), Sample("fill", "cluster", 1, 1_000.0),
               Sample("faust", "single", 1, 3_000.0)]
    keys = [row.measure.key for row in summarize(samples)]
    order = [measure.key for measure in MEASURES]
    assert keys == sorted(keys, key=order.index) == ["fill", "faust", "1000_p99"]


def test_the_table_shows_medians_rounds_and_the_range_of_round_ratios() -> None:
    table = markdown_table(summarize(drains([3_000.0, 2_000.0], [1_500.0, 1_600.0])), processes=3)
    lines = table.splitlines()
    assert lines[0] == "| measure | single-node | clustered | cluster / single |"
    assert lines[2] == ("| drain: scoring worker, 1 process (events/s) | **2,500** (3,000, 2,000) | "
                        "**1,550** (1,500, 1,600) | 0.62 (0.50–0.80) |")


def test_the_scale_out_rows_name_the_number_of_processes() -> None:
    table = markdown_table(summarize([Sample("scale", "single", 1, 4_000.0),
                                      Sample("scale", "cluster", 1, 2_000.0)]), processes=3)
    assert "| drain: 3 worker processes (events/s) | 4,000 | 2,000 | 0.50 |" in table


@pytest.mark.parametrize(("value", "unit", "shown"), [
    (3361.4, "events/s", "3,361"), (14.4, "ms", "14"), (0.294, "CPU s", "0.29"),
    (0.949, "ratio", "0.95"), (0.61, "share", "61%"), (float("nan"), "ms", "–")])
def test_figures_print_as_the_benchmark_pages_print_them(value: float, unit: str, shown: str) -> None:
    assert figure(value, unit) == shown


def test_percentiles_are_read_from_the_latency_line() -> None:
    line = ("  1,000/s offered, 8,000 events: p50 1,316 ms, p99 1,870 ms; kept up (all decided "
            "within 5 s of the last send)")
    assert ladder_percentiles(line) == (1_316.0, 1_870.0)


def test_a_latency_line_without_decisions_gives_no_percentiles() -> None:
    p50, p99 = ladder_percentiles("    200/s offered, 1,600 events: no decisions; CANNOT KEEP UP")
    assert math.isnan(p50) and math.isnan(p99)


def test_a_latency_line_of_another_format_is_refused_with_what_to_update() -> None:
    with pytest.raises(ValueError, match="LADDER_FIGURES"):
        ladder_percentiles("200/s: median 14 ms")
