"""Audit: a vocabulary of events, each written as a row and a JSON log line."""

from .events import Event
from .record import record

__all__ = ["Event", "record"]
