"""Relative and absolute dates in a question, anchored at the data's last day (never the wall clock: a warehouse
loaded yesterday answers "last 7 days" with its own last 7 days, and the same question gives the same answer).

``extract(text, as_of)`` finds the time range, a comparison ("compare with last month") and a time grain ("daily",
"by week", "trend") and returns the text with those words blanked out.
"""

from __future__ import annotations

import calendar
import datetime
import re
from dataclasses import dataclass

MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
MONTHS.pop("may", None)
MONTHS["may"] = 5
_MONTH = r"(?:" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")"
_DAY = r"(?:\d{1,2})(?:st|nd|rd|th)?"
DATE = rf"(?:\d{{4}}-\d{{2}}-\d{{2}}|{_MONTH}\.? {_DAY}(?:,? \d{{4}})?|{_DAY} (?:of )?{_MONTH}(?:,? \d{{4}})?)"
UNITS = {"day": "day", "days": "day", "week": "week", "weeks": "week", "month": "month", "months": "month"}


@dataclass(frozen=True)
class Found:
    start: datetime.date | None = None
    end: datetime.date | None = None
    label: str = ""
    compare: str | None = None
    grain: str | None = None


def parse_date(text: str, as_of: datetime.date) -> datetime.date:
    text = text.strip().rstrip(".")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.date.fromisoformat(text)
    year = re.search(r"(\d{4})$", text)
    body = text[: year.start()].rstrip(" ,") if year else text
    month_word = re.search(_MONTH, body)
    day_word = re.search(r"\d{1,2}", body)
    if not month_word or not day_word:
        raise ValueError(f"not a date: {text!r}")
    month, day = MONTHS[month_word.group(0)], int(day_word.group(0))
    y = int(year.group(1)) if year else (as_of.year if (month, day) <= (as_of.month, as_of.day) else as_of.year - 1)
    return datetime.date(y, month, day)


def _month_range(year: int, month: int) -> tuple[datetime.date, datetime.date]:
    return datetime.date(year, month, 1), datetime.date(year, month, calendar.monthrange(year, month)[1])


def add_months(day: datetime.date, months: int) -> datetime.date:
    """The same day ``months`` later (earlier when negative), clipped to the month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return datetime.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def shift(start: datetime.date, end: datetime.date, compare: str) -> tuple[datetime.date, datetime.date]:
    """The period a comparison reads: the same range a period, week, month or year earlier."""
    if compare == "previous_period":
        length = (end - start).days + 1
        return start - datetime.timedelta(days=length), end - datetime.timedelta(days=length)
    if compare == "previous_week":
        week = datetime.timedelta(days=7)
        return start - week, end - week
    months = {"previous_month": 1, "previous_year": 12}[compare]
    return add_months(start, -months), add_months(end, -months)


def extract(text: str, as_of: datetime.date | None) -> tuple[Found, str]:
    """The dates of ``text`` (lower case) and the text without them. Without ``as_of`` (an empty warehouse)
    relative dates are left in the text, so the question is refused as not understood."""
    found: dict[str, object] = {}

    def blank(match: re.Match[str]) -> str:
        return " " * len(match.group(0))

    # comparisons first: "compare with last month" is not the range "last month"
    compare = re.search(
        r"\b(?:compare[sd]?|comparing|comparison|vs\.?|versus|against|relative)\s+(?:it\s+|that\s+|this\s+)?"
        r"(?:with|to|against)?\s*(?:the\s+)?(?:same\s+(?:period|days|range)\s+)?"
        r"(?:(last|previous|prior|preceding)\s+(period|week|month|year)|(week|month|year)\s+before|"
        r"(period)\s+before)\b",
        text,
    )
    if not compare and re.search(r"\b(?:compar\w*|vs\.?|versus|against|relative)\b", text):
        # "compare revenue last 3 days with the previous period": the verb and the period apart
        compare = re.search(
            r"\b(?:compare[sd]?|comparing|vs\.?|versus|against|with|to)\s+(?:the\s+)?(?:same\s+(?:period|days)\s+)?"
            r"(?:(last|previous|prior|preceding)\s+(period|week|month|year)|(week|month|year)\s+before|"
            r"(period)\s+before)\b",
            text,
        )
        verb = re.search(r"\b(?:compare[sd]?|comparing|comparison)\b", text)
        if compare and verb:
            text = text[: verb.start()] + " " * len(verb.group(0)) + text[verb.end() :]
    if compare:
        unit = compare.group(2) or compare.group(3) or compare.group(4)
        found["compare"] = "previous_period" if unit == "period" else f"previous_{unit}"
        text = text[: compare.start()] + blank(compare) + text[compare.end() :]
    if as_of is None:
        return Found(compare=found.get("compare")), text  # type: ignore[arg-type]

    def take(pattern: str, handler) -> bool:
        nonlocal text
        match = re.search(pattern, text)
        if not match or "start" in found:
            return False
        start, end, label = handler(match)
        found.update(start=start, end=end, label=label)
        text = text[: match.start()] + blank(match) + text[match.end() :]
        return True

    monday = as_of - datetime.timedelta(days=as_of.weekday())
    take(
        rf"\b(?:between|from)\s+({DATE})\s+(?:and|to|until|through|till|-)\s+({DATE})\b",
        lambda m: (parse_date(m.group(1), as_of), parse_date(m.group(2), as_of), f"{m.group(1)} to {m.group(2)}"),
    )
    take(rf"\bsince\s+({DATE})\b", lambda m: (parse_date(m.group(1), as_of), as_of, f"since {m.group(1)}"))
    take(
        r"\b(?:in\s+|over\s+|during\s+|for\s+)?(?:the\s+)?(?:last|past|previous|trailing|prior)\s+(\d{1,3})\s+"
        r"(days?|weeks?|months?)\b",
        lambda m: _trailing(int(m.group(1)), UNITS[m.group(2)], as_of),
    )
    take(
        r"\b(?:in\s+|over\s+|during\s+|for\s+)?(?:the\s+)?past\s+(week|month)\b",
        lambda m: _trailing(1, m.group(1), as_of),
    )
    take(r"\b(?:on\s+|for\s+)?yesterday\b", lambda m: (as_of - datetime.timedelta(days=1),) * 2 + ("yesterday",))
    take(r"\b(?:on\s+|for\s+)?today\b", lambda m: (as_of, as_of, "today"))
    take(
        r"\b(?:in\s+|during\s+|for\s+)?(?:this|the\s+current|current)\s+week\b", lambda m: (monday, as_of, "this week")
    )
    take(
        r"\b(?:in\s+|during\s+|for\s+)?(?:the\s+)?(?:last|previous|prior)\s+week\b",
        lambda m: (monday - datetime.timedelta(days=7), monday - datetime.timedelta(days=1), "last week"),
    )
    take(
        r"\b(?:in\s+|during\s+|for\s+)?(?:this|the\s+current|current)\s+month\b",
        lambda m: (as_of.replace(day=1), as_of, "this month"),
    )
    take(
        r"\b(?:in\s+|during\s+|for\s+)?(?:the\s+)?(?:last|previous|prior)\s+month\b",
        lambda m: (*_month_range(*_prev_month(as_of)), "last month"),
    )
    take(
        r"\b(?:in\s+|during\s+|for\s+)?(?:this|the\s+current|current)\s+year\b|\b(?:year to date|ytd)\b",
        lambda m: (as_of.replace(month=1, day=1), as_of, "this year"),
    )
    take(
        r"\b(?:in\s+|during\s+|for\s+)?(?:the\s+)?(?:last|previous|prior)\s+year\b",
        lambda m: (datetime.date(as_of.year - 1, 1, 1), datetime.date(as_of.year - 1, 12, 31), "last year"),
    )
    take(rf"\b(?:on\s+|for\s+)?({DATE})\b", lambda m: (parse_date(m.group(1), as_of),) * 2 + (m.group(1),))
    take(
        rf"\b(?:in\s+|during\s+|for\s+)?({_MONTH})(?:\s+(\d{{4}}))?\b",
        lambda m: (*_month_range(*_named_month(m, as_of)), m.group(0).strip()),
    )
    grains = (
        (r"\b(?:daily|per\s+day|by\s+day|each\s+day|day\s+by\s+day|every\s+day)\b", "day"),
        (r"\b(?:weekly|per\s+week|by\s+week|each\s+week|week\s+by\s+week|every\s+week)\b", "week"),
        (r"\b(?:monthly|per\s+month|by\s+month|each\s+month|month\s+by\s+month)\b", "month"),
        (r"\b(?:over\s+time|trend(?:s|ing)?|time\s+series|series)\b", "day"),
    )
    for pattern, grain in grains:
        match = re.search(pattern, text)
        if match:
            found.setdefault("grain", grain)
            text = text[: match.start()] + blank(match) + text[match.end() :]
    return Found(**found), text  # type: ignore[arg-type]


def _trailing(n: int, unit: str, as_of: datetime.date) -> tuple[datetime.date, datetime.date, str]:
    if n < 1:
        raise ValueError("a trailing window of at least one day")
    if unit == "day":
        start = as_of - datetime.timedelta(days=n - 1)
    elif unit == "week":
        start = as_of - datetime.timedelta(days=7 * n - 1)
    else:
        start = add_months(as_of, -n) + datetime.timedelta(days=1)
    return start, as_of, f"last {n} {unit}{'s' if n > 1 else ''}"


def _prev_month(as_of: datetime.date) -> tuple[int, int]:
    return (as_of.year - 1, 12) if as_of.month == 1 else (as_of.year, as_of.month - 1)


def _named_month(match: re.Match[str], as_of: datetime.date) -> tuple[int, int]:
    month = MONTHS[match.group(1)]
    if match.group(2):
        return int(match.group(2)), month
    return (as_of.year if month <= as_of.month else as_of.year - 1), month
