"""Relative dates of the assistant end at the data's last day (mos_pipelines/assistant/dates.py)."""

from __future__ import annotations

import datetime

import pytest

from mos_pipelines.assistant.dates import extract, shift

AS_OF = datetime.date(2026, 3, 18)  # a Wednesday
d = datetime.date


@pytest.mark.parametrize(
    ("text", "start", "end", "compare", "grain"),
    [
        ("revenue last 7 days", d(2026, 3, 12), d(2026, 3, 18), None, None),
        ("revenue in the past 2 weeks", d(2026, 3, 5), d(2026, 3, 18), None, None),
        ("revenue yesterday", d(2026, 3, 17), d(2026, 3, 17), None, None),
        ("revenue this week", d(2026, 3, 16), d(2026, 3, 18), None, None),
        ("revenue last week", d(2026, 3, 9), d(2026, 3, 15), None, None),
        ("revenue last month", d(2026, 2, 1), d(2026, 2, 28), None, None),
        ("revenue in March", d(2026, 3, 1), d(2026, 3, 31), None, None),
        ("revenue in april", d(2025, 4, 1), d(2025, 4, 30), None, None),  # a month not yet reached: last year's
        ("revenue between 2026-01-02 and 2026-01-04", d(2026, 1, 2), d(2026, 1, 4), None, None),
        ("revenue on March 3", d(2026, 3, 3), d(2026, 3, 3), None, None),
        ("revenue since 2026-03-01", d(2026, 3, 1), d(2026, 3, 18), None, None),
        ("daily revenue last 3 days", d(2026, 3, 16), d(2026, 3, 18), None, "day"),
        ("weekly spend", None, None, None, "week"),
        ("revenue compare with last month", None, None, "previous_month", None),
        ("revenue last 7 days vs the previous period", d(2026, 3, 12), d(2026, 3, 18), "previous_period", None),
    ],
)
def test_dates_are_read_relative_to_the_data(text, start, end, compare, grain) -> None:
    found, rest = extract(f" {text.lower()} ", AS_OF)
    assert (found.start, found.end, found.compare, found.grain) == (start, end, compare, grain)
    assert "revenue" in rest or "spend" in rest


def test_a_comparison_shifts_the_range() -> None:
    assert shift(d(2026, 3, 12), d(2026, 3, 18), "previous_period") == (d(2026, 3, 5), d(2026, 3, 11))
    assert shift(d(2026, 3, 1), d(2026, 3, 18), "previous_month") == (d(2026, 2, 1), d(2026, 2, 18))
    assert shift(d(2026, 3, 31), d(2026, 3, 31), "previous_month") == (d(2026, 2, 28), d(2026, 2, 28))


def test_without_data_relative_dates_are_left_unread() -> None:
    found, rest = extract(" revenue last 7 days ", None)
    assert found.start is None and "last 7 days" in rest
