"""Excel workbooks for tests, written with XlsxWriter as Excel would save them."""

from __future__ import annotations

import io
from typing import Any

import xlsxwriter


def xlsx_bytes(sheets: dict[str, list[list[Any]]]) -> bytes:
    """A workbook with these sheets (name -> rows, the first row the header); a None cell is left empty."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False})
    dates = book.add_format({"num_format": "yyyy-mm-dd"})
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is None:
                    continue
                if hasattr(value, "isoformat"):
                    sheet.write_datetime(r, c, value, dates)
                else:
                    sheet.write(r, c, value)
    book.close()
    return out.getvalue()
