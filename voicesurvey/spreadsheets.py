"""CSV cells that a spreadsheet opens as text, never as a formula (OWASP "CSV injection"):
every export of names, answers and imported values goes through `safe_cell`."""

import re

# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PHONE_LIKE = re.compile(r"\+?[\d\s().\-/]*")


def safe_cell(value) -> str:
    """`value` as the spreadsheet should show it: a leading formula character is escaped with
    an apostrophe. A phone number as people write it ("+1 212 555 0148", digits, spaces,
    dashes, parentheses) is left as it is: it cannot run, and importing it again must work."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not PHONE_LIKE.fullmatch(text):
        return "'" + text
    return text
