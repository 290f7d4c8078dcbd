"""Recovery codes: single-use codes a person writes down at second-factor enrolment and types
when every other factor is lost (DESIGN, "Recovery codes": argon2id, single use).

A code is two groups of five characters, e.g. ``k7m2p-x9qrt``, drawn with ``secrets`` from a
32-symbol lower-case alphabet without the look-alikes 0/o, 1/l (and upper-case I, which
cannot occur since codes are lower-case): 10 x log2(32) = 50 bits per code. That is too few
for a fast hash, so codes are stored as argon2id hashes (RFC 9106) and each is spent by the
caller after one use.

Pure apart from the ``Passwords`` hasher passed in; persistence, single use and audit belong
to the caller.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from .passwords import Passwords

ALPHABET = "23456789abcdefghijkmnpqrstuvwxyz"
GROUP = 5
GROUPS = 2
LENGTH = GROUP * GROUPS
BITS = 50  # LENGTH * log2(len(ALPHABET)), checked by a test
COUNT = 10


def generate(count: int = COUNT) -> list[str]:
    """``count`` distinct codes as shown to the person: ``xxxxx-xxxxx``."""
    if count < 1:
        raise ValueError("count must be >= 1")
    codes: dict[str, None] = {}  # insertion-ordered set
    while len(codes) < count:  # a repeat has probability about count**2 / 2**51
        raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        codes["-".join(raw[i:i + GROUP] for i in range(0, LENGTH, GROUP))] = None
    return list(codes)


def normalize(typed: str) -> str | None:
    """The canonical form of a typed code (lower-case, no spaces or dashes), or None when it
    cannot be a code (wrong length, or a character outside the alphabet)."""
    canonical = "".join(typed.split()).replace("-", "").lower()
    if len(canonical) != LENGTH or any(c not in ALPHABET for c in canonical):
        return None
    return canonical


def hash_all(passwords: Passwords, codes: Sequence[str]) -> list[str]:
    """argon2id hashes of the codes' canonical forms, in the same order."""
    hashes = []
    for code in codes:
        canonical = normalize(code)
        if canonical is None:
            raise ValueError("not a recovery code")
        hashes.append(passwords.hash(canonical))
    return hashes


def match(passwords: Passwords, typed: str, hashes: Sequence[str | None]) -> int | None:
    """The index in ``hashes`` of the code typed, or None. A ``None`` entry is a spent code
    and never matches; the caller marks the returned index spent (atomically)."""
    canonical = normalize(typed)
    if canonical is None:
        return None
    for index, stored in enumerate(hashes):
        # verify(None, ...) checks a dummy hash and is False, so a spent slot costs as much as a
        # live one. Stopping at a match reveals nothing the person does not already know.
        if passwords.verify(stored, canonical):
            return index
    return None
