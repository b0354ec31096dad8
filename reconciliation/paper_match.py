"""Match paper-journal blocks to the transactions the paper should show.

The paper prints receipts in the order the terminal made them, so matching is
an order-preserving alignment of two sequences: blocks (noisy) and expected
receipts (from the EJ and the host, exact).

1. Exact anchors: a block showing an expected STAN (6 digits) or RRN (12),
   after the OCR look-alikes are undone. OCR never turns one digit into
   another, so an exact hit is strong; the longest chain of anchors that
   increases in both sequences is kept (an authorisation code that happens to
   equal a STAN falls out of order and is dropped).
2. Between two anchors, the expected receipts still unmatched and the blocks
   still unassigned are aligned by rapidfuzz edit distance on STAN, RRN and
   time; when the counts agree the order alone decides.

What stays unmatched is a paper gap: the receipt is missing from the roll.
"""

from __future__ import annotations

import operator
from bisect import bisect_left
from typing import NamedTuple

from rapidfuzz.distance import Levenshtein

from reconciliation.model import EjTransaction, PaperBlock

try:
    from reconciliation._speedups import paper_chain as _compiled_chain
    from reconciliation._speedups import paper_exact_pairs as _compiled_exact_pairs
    from reconciliation._speedups import paper_receipts as _compiled_receipts
except ImportError:  # built without a C compiler: the Python loops below
    _compiled_chain = None  # type: ignore[assignment]
    _compiled_exact_pairs = None  # type: ignore[assignment]
    _compiled_receipts = None  # type: ignore[assignment]


class Expected(NamedTuple):
    """A receipt the paper should show."""

    stan: str
    rrn: str
    time: str  # HH:MM:SS


Index = tuple[dict[str, int], dict[str, int], list[str]]
"""Of a list of receipts: the first position of each STAN and of each RRN, and each
receipt's time without its colons."""

HostFirsts = dict[str, tuple[str, str, int, str]]
"""A terminal-day's first request or response per STAN: (RRN, time, amount, PAN)."""


class Receipts(NamedTuple):
    """What a terminal-day's paper should show (:func:`receipts`)."""

    ordered: list[tuple[Expected, int, str]]  # (receipt, amount, card), by time then STAN
    expected: list[Expected]  # the receipts alone, in that order
    lookup: Index


# what receipts() reads of each EJ record, in the compiled function's order
_RECEIPT_FIELDS = tuple(
    EjTransaction._fields.index(name)
    for name in ("stan", "rrn", "time", "card", "amount_minor", "truncated")
)


def receipts(transactions: list[EjTransaction], host: HostFirsts) -> Receipts:
    """The receipts a terminal-day's paper should show: the EJ's (with the host's
    amount where the host has the STAN), then the host's other STANs; one per STAN
    (a later EJ block with the same STAN replaces the earlier), by time then STAN.
    Compiled where the package was built with ``reconciliation/csrc/``."""
    if _compiled_receipts is not None:
        ordered, expected, by_stan, by_rrn, compact = _compiled_receipts(
            transactions, host, _RECEIPT_FIELDS, Expected
        )
        return Receipts(ordered, expected, (by_stan, by_rrn, compact))
    found: dict[str, tuple[str, str, str, int, str]] = {}  # stan -> (time, stan, rrn, ...)
    known = host.get
    for stan, rrn, at, card, amount, truncated in map(_RECEIPT_FIELD_VALUES, transactions):
        if stan and not truncated:
            message = known(stan)
            found[stan] = (at, stan, rrn, message[2] if message else amount, card)
    for stan, (rrn, at, amount, pan) in host.items():
        if stan not in found:
            found[stan] = (at, stan, rrn, amount, pan)
    # by time, then STAN (unique here): tuples compare in that order
    ordered = [
        (Expected(stan, rrn, at), amount, card)
        for at, stan, rrn, amount, card in sorted(found.values())
    ]
    expected = [item[0] for item in ordered]
    return Receipts(ordered, expected, _index(expected))


_RECEIPT_FIELD_VALUES = operator.itemgetter(*_RECEIPT_FIELDS)


def _index(expected: list[Expected]) -> Index:
    by_stan: dict[str, int] = {}
    by_rrn: dict[str, int] = {}
    for index, item in enumerate(expected):
        by_stan.setdefault(item.stan, index)
        if item.rrn:
            by_rrn.setdefault(item.rrn, index)
    return by_stan, by_rrn, [item.time.replace(":", "") for item in expected]


def _exact_pairs(
    blocks: list[PaperBlock], expected: list[Expected], index: Index | None = None
) -> list[tuple[int, int, int]]:
    by_stan, by_rrn, compact = index if index is not None else _index(expected)
    if _compiled_exact_pairs is not None:
        return _compiled_exact_pairs(blocks, by_stan, by_rrn, compact)
    stan_of, rrn_of = by_stan.get, by_rrn.get
    pairs: list[tuple[int, int, int]] = []
    for block in blocks:
        scores: dict[int, int] = {}
        for token in block.stans:
            found = stan_of(token)
            if found is not None:
                scores[found] = scores.get(found, 0) + 2
        for token in block.rrns:
            found = rrn_of(token)
            if found is not None:
                scores[found] = scores.get(found, 0) + 3
            elif len(token) == 12:
                found = stan_of(token[6:])
                if found is not None:
                    scores[found] = scores.get(found, 0) + 1
        if not scores:
            continue
        times = block.times
        if len(scores) == 1:  # the usual block: one receipt's readings
            ((index, score),) = scores.items()
            if compact[index] in times:
                score += 1
            if score >= 2:
                pairs.append((block.position, index, score))
            continue
        scored: list[tuple[int, int]] = []
        for index, score in scores.items():
            if compact[index] in times:
                score += 1
            if score >= 2:
                scored.append((score, index))
        if len(scored) > 1 and len(times) < 2:
            # one receipt's worth of text: a second STAN is an authorisation code or
            # a corrupted neighbour, not a second receipt
            scored = [max(scored)]
        pairs.extend([(block.position, index, score) for score, index in scored])
    pairs.sort()
    return pairs


def _chain(pairs: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Longest chain strictly increasing in the expected index (blocks are sorted);
    compiled where the package was built with ``reconciliation/csrc/``."""
    if _compiled_chain is not None:
        return _compiled_chain(pairs)
    tails: list[int] = []
    tail_at: list[int] = []
    previous: list[int] = [-1] * len(pairs)
    for position, (_, expected_index, _) in enumerate(pairs):
        slot = bisect_left(tails, expected_index)
        if slot == len(tails):
            tails.append(expected_index)
            tail_at.append(position)
        else:
            tails[slot] = expected_index
            tail_at[slot] = position
        previous[position] = tail_at[slot - 1] if slot > 0 else -1
    chain: list[tuple[int, int, int]] = []
    position = tail_at[-1] if tail_at else -1
    while position != -1:
        chain.append(pairs[position])
        position = previous[position]
    chain.reverse()
    return chain


def fuzzy_score(block: PaperBlock, item: Expected) -> int:
    """Evidence that ``block`` is ``item``'s receipt, tolerant of OCR edits."""
    score = 0
    if any(Levenshtein.distance(token, item.stan, score_cutoff=1) <= 1 for token in block.stans):
        score += 2
    if item.rrn and any(
        Levenshtein.distance(token, item.rrn, score_cutoff=2) <= 2 for token in block.rrns
    ):
        score += 2
    time = item.time.replace(":", "")
    if time and any(
        Levenshtein.distance(token, time, score_cutoff=1) <= 1 for token in block.times
    ):
        score += 1
    return score


def _align(
    blocks: list[PaperBlock], items: list[int], expected: list[Expected]
) -> list[tuple[int, int]]:
    """Order-preserving alignment of a window's blocks and receipts."""
    if not blocks or not items:
        return []
    if len(blocks) == len(items):
        return [(block.position, item) for block, item in zip(blocks, items, strict=True)]
    rows, cols = len(items), len(blocks)
    best = [[0] * (cols + 1) for _ in range(rows + 1)]
    for row in range(rows - 1, -1, -1):
        for col in range(cols - 1, -1, -1):
            score = fuzzy_score(blocks[col], expected[items[row]])
            take = score + best[row + 1][col + 1] if score >= 2 else -1
            best[row][col] = max(take, best[row + 1][col], best[row][col + 1])
    pairs: list[tuple[int, int]] = []
    row = col = 0
    while row < rows and col < cols:
        score = fuzzy_score(blocks[col], expected[items[row]])
        if score >= 2 and best[row][col] == score + best[row + 1][col + 1]:
            pairs.append((blocks[col].position, items[row]))
            row += 1
            col += 1
        elif best[row][col] == best[row + 1][col]:
            row += 1
        else:
            col += 1
    return pairs


def match_paper(
    blocks: list[PaperBlock], expected: list[Expected], index: Index | None = None
) -> dict[int, int]:
    """Expected index -> block index for every receipt found on the paper
    (``index``: the receipts' :data:`Index`, when :func:`receipts` made it)."""
    chain = _chain(_exact_pairs(blocks, expected, index))
    found: dict[int, int] = {item: block for block, item, _ in chain}
    if len(found) == len(expected):
        return found
    assigned = {block for block, _, _ in chain}
    # the receipts between each two anchors (and before the first, after the last);
    # most anchors are neighbours, with none between them
    low = (-1, -1)
    for high_block, high_item, _ in [*chain, (len(blocks), len(expected), 0)]:
        if high_item - low[1] > 1:
            _fill_between(blocks, expected, found, assigned, low, (high_block, high_item))
        low = (high_block, high_item)
    return found


def _fill_between(
    blocks: list[PaperBlock],
    expected: list[Expected],
    found: dict[int, int],
    assigned: set[int],
    low: tuple[int, int],
    high: tuple[int, int],
) -> None:
    """Align the receipts between two anchors, each ``(block, receipt)``, with the
    blocks between them (and an anchor block that may hold two receipts); what
    matches goes into ``found``."""
    (low_block, low_item), (high_block, high_item) = low, high
    items = [item for item in range(low_item + 1, high_item) if item not in found]
    if not items:
        return
    window = [
        block
        for block in blocks[max(low_block, 0) : high_block + 1]
        if (block.position not in assigned and low_block < block.position < high_block)
        or (block.position in (low_block, high_block) and len(block.times) >= 2)
    ]
    unassigned = [block for block in window if block.position not in assigned]
    chosen = _align(unassigned if len(unassigned) == len(items) else window, items, expected)
    for block_index, item in chosen:
        found[item] = block_index
