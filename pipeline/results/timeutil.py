"""Timestamps as fixed-width UTC text, so they sort and compare the same in SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import UTC, date, datetime

from pipeline.errors import UserError

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width: text order == time order


def format_time(moment: datetime) -> str:
    """UTC text of an aware datetime (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def utc_now() -> str:
    return format_time(datetime.now(UTC))


def parse_time(text: str, *, what: str = "time", end_of_day: bool = False) -> str:
    """Normalise a user's date or ISO date-time; a bare date means its start (or its end for --until)."""
    text = text.strip()
    try:
        if not text.isascii():  # Python's parsers accept other scripts' digits in places; the store does not
            raise ValueError(text)
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, datetime.max.time() if end_of_day else datetime.min.time())
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return format_time(moment)
    except ValueError:
        raise UserError(f"{what} {text!r} is not a date: "
                        "use YYYY-MM-DD or an ISO date-time like 2025-01-31T22:00") from None
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00 is past the year 9999 in UTC
        raise UserError(f"{what} {text!r} is out of range: use a date between 0001-01-02 and 9999-12-30") from None
