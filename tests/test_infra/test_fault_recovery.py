"""The time to recover from a fault, without a server: from the kill to the last decision of
an application the fault held up, from the records' own timestamps."""

from infra.faults.harness import DECISION, FaultCounts, PlannedMessage, Received, fault_table
from infra.faults.recovery import measure_recovery

KILLED_AT = 1_000.0


def _application(number: int) -> PlannedMessage:
    return PlannedMessage(f"app-{number}".encode(), b"{}", "valid", DECISION, f"app-{number}")


def _decision(number: int, published: float) -> Received:
    return Received(f"app-{number}".encode(), {"decision": "approve"}, round(published * 1000))


def _stream(outage_s: float) -> tuple[list[PlannedMessage], list[float], list[Received]]:
    """Ten applications a second for 20 s around the kill, each decided 50 ms after it was
    sent, except those waiting for the outage's end (``outage_s`` after the kill)."""
    messages, handed_at, decisions = [], [], []
    for number in range(200):
        sent = KILLED_AT - 10 + number / 10
        decided = sent + 0.05
        if KILLED_AT <= decided < KILLED_AT + outage_s:
            decided = KILLED_AT + outage_s + number / 1000  # the backlog drains in order
        messages.append(_application(number))
        handed_at.append(sent)
        decisions.append(_decision(number, decided))
    return messages, handed_at, decisions


def test_recovery_lasts_from_the_kill_until_the_backlog_of_the_outage_is_decided() -> None:
    messages, handed_at, decisions = _stream(outage_s=8.0)

    recovery = measure_recovery(messages, handed_at, decisions, KILLED_AT)

    assert 8.0 < recovery.recovery_s < 8.3
    assert abs(recovery.normal_delay_s - 0.05) < 1e-6 and recovery.bar_s == 1.0
    assert 7.9 < recovery.worst_delay_s < 8.3
    assert 70 <= recovery.held_up <= 73  # sent from the kill until a second before it ended


def test_an_outage_shorter_than_the_bar_holds_nothing_up() -> None:
    messages, handed_at, decisions = _stream(outage_s=0.5)

    recovery = measure_recovery(messages, handed_at, decisions, KILLED_AT)

    assert recovery.recovery_s == 0.0 and recovery.held_up == 0
    assert recovery.first_decision_s is not None and 0.5 <= recovery.first_decision_s < 0.6


def test_a_copy_republished_after_the_kill_counts_from_its_first_publication() -> None:
    messages, handed_at, decisions = _stream(outage_s=0.0)
    late_copy = _decision(50, KILLED_AT + 30)  # decided at once, republished after a restart

    recovery = measure_recovery(messages, handed_at, [*decisions, late_copy], KILLED_AT)

    assert recovery.recovery_s == 0.0


def test_the_fault_table_shows_the_time_to_recover_when_measured() -> None:
    counts = FaultCounts(sent=10, decided=10)

    with_recovery = fault_table([("a", counts, 12.0), ("b", counts, 9.0)], [4.25, None])
    without = fault_table([("a", counts, 12.0)])

    assert with_recovery[0].endswith("| seconds | recovery s |")
    assert with_recovery[2].endswith("| 12 | 4.2 |") and with_recovery[3].endswith("| 9 | - |")
    assert without[0].endswith("| seconds |") and without[2].endswith("| 12 |")


def test_slow_first_batches_of_a_run_do_not_raise_the_bar() -> None:
    messages, handed_at, decisions = _stream(outage_s=4.0)
    slow_start = [_decision(number, handed_at[number] + 5.0) for number in range(20)]

    recovery = measure_recovery(messages, handed_at, [*slow_start, *decisions[20:]], KILLED_AT)

    assert recovery.bar_s == 1.0 and 4.0 < recovery.recovery_s < 4.3
