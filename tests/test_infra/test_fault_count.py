"""The fault suite's one count, without a server: what became of each message sent."""

from infra.faults.harness import (
    DEAD_LETTER,
    DECISION,
    PlannedMessage,
    Received,
    SentMessage,
    count_outcomes,
)

VALID = PlannedMessage(b"app-1", b"{}", "valid", DECISION, "app-1")
MALFORMED = PlannedMessage(b"bad-1", b"{", "malformed:not_json", DEAD_LETTER, error="not_json")
UNKEYED = PlannedMessage(None, b"{", "malformed:not_json", DEAD_LETTER, error="not_json")
SENT = [SentMessage(VALID, 0, 10), SentMessage(MALFORMED, 1, 20), SentMessage(UNKEYED, 2, 30)]


def _letter(key: bytes | None, partition: object, offset: object) -> Received:
    return Received(key, {"error": "not_json", "source": {"partition": partition,
                                                           "offset": offset}})


def test_each_message_ending_once_counts_clean():
    counts = count_outcomes(SENT, [Received(b"app-1", {"decision": "approve"})],
                            [_letter(b"bad-1", 1, 20), _letter(None, 2, 30)])
    assert (counts.sent, counts.decided, counts.dead_lettered) == (3, 1, 2)
    assert counts.ok and not counts.problems


def test_a_dead_letter_without_its_source_place_is_matched_by_its_key():
    counts = count_outcomes(SENT, [Received(b"app-1", {"decision": "approve"})],
                            [_letter(b"bad-1", None, None), _letter(None, 2, 30)])
    assert counts.dead_lettered == 2 and counts.unmatched == 0 and counts.ok


def test_lost_differing_and_stray_outputs_are_counted():
    counts = count_outcomes(SENT, [Received(b"app-1", {"decision": "approve"}),
                                   Received(b"app-1", {"decision": "decline"}),
                                   Received(b"app-9", {"decision": "approve"})],
                            [_letter(None, "1", "20")])  # a source place that is not numbers
    assert (counts.lost, counts.duplicates, counts.non_identical, counts.unmatched) == (2, 1, 1, 2)
    assert not counts.ok
