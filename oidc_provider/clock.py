"""Time, in one place, so tests can inject a clock."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Naive UTC datetime: stored the same way on SQLite and PostgreSQL."""
    return datetime.now(UTC).replace(tzinfo=None)


def epoch(dt: datetime) -> int:
    return int(dt.replace(tzinfo=UTC).timestamp())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
