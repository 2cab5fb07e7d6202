"""Which CSV cells a spreadsheet would run as formulas, and their neutralised form: one rule for Python and SQL.

A cell is a formula when, after any leading whitespace (spaces, tabs, line breaks), it starts with ``=``, ``+``,
``-`` or ``@`` (OWASP "CSV injection"), unless the whole cell is a number. It is then written with a ``'`` in
front, which spreadsheets show as text and never run.

A number is a plain decimal or scientific literal with an optional sign and nothing before or after it:
``-12.50``, ``+3``, ``1e5``, ``-.5``. Spreadsheets read it as that number whatever follows the sign, so quoting it
would only turn it into text that sums skip. ``-1,5``, ``-5%``, ``-$5`` and ``-2+3`` are quoted: the rule stays
one a reader can check, and a cell with an operator after the sign is exactly what an injection looks like.

Both patterns are written in the syntax Python's ``re`` and PostgreSQL's regular expressions share (``\\A``,
``\\Z``, bracket classes, backslash before a punctuation character), so the database writing a CSV itself
applies the same text; tests/test_exports.py holds the two to one table of cases.
"""

from __future__ import annotations

import re

from sqlalchemy import and_, case, func, literal, not_

SPACE = " \t\n\r\v\f"  # what may come before a formula's first character
STARTS = "=+-@"
FORMULA = re.compile(rf"\A[{re.escape(SPACE)}]*[{re.escape(STARTS)}]")
NUMBER = re.compile(r"\A[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


def is_formula(text: str) -> bool:
    return FORMULA.search(text) is not None and NUMBER.search(text) is None


def neutralise(value: object) -> object:
    """The cell as a spreadsheet should show it: a formula as quoted text; numbers, dates and the rest as they are."""
    if isinstance(value, str) and is_formula(value):
        return "'" + value
    return value


def neutralised(column):
    """``neutralise`` as a SQL expression over a text column (empty text becomes NULL, as Python writes it)."""
    # The first character is compared before any pattern runs: most cells are plain text, which a comparison
    # settles for less than a pattern does, and this runs on every text cell of a million-row export.
    first = func.substr(column, 1, 1).in_(tuple(SPACE + STARTS))
    formula = and_(first, column.regexp_match(FORMULA.pattern), not_(column.regexp_match(NUMBER.pattern)))
    return case((formula, literal("'") + column), else_=func.nullif(column, ""))
