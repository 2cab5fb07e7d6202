"""How counts read in sentences: "1 request", "3 provider batches", never "request(s)"."""

from __future__ import annotations


def count_of(count: int, singular: str, plural: str | None = None) -> str:
    """``count`` with the noun in its number, thousands separated: ``1 request``, ``1,200 provider batches``.

    ``plural`` defaults to ``singular + "s"``; give it for any other plural (``batch`` -> ``batches``).
    """
    return f"{count:,} {singular if count == 1 else plural or singular + 's'}"


def tally(**counts: int) -> str:
    """The non-zero counts as ``2 succeeded, 3 cancelled`` (in the order given); ``nothing`` when all are 0."""
    return ", ".join(f"{count:,} {name.replace('_', ' ')}" for name, count in counts.items() if count) or "nothing"


def rows_named(numbers: list[int], total: int, shown: int = 10) -> str:
    """``rows 4, 9, 12``, or ``rows 4, 9, 12, …`` when ``total`` is more than those shown (``shown`` at most)."""
    listed = ", ".join(f"{n:,}" for n in numbers[:shown])
    more = ", …" if total > min(shown, len(numbers)) else ""
    return f"{'row' if total == 1 else 'rows'} {listed}{more}"
