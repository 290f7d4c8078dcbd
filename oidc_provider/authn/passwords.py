"""Password hashing with argon2id (RFC 9106). "Unknown user" costs the same as "wrong
password": a dummy hash is verified so timing does not reveal which accounts exist. ``policy``
(``password_policy``) decides what a new password may be, wherever one is set."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .password_policy import PasswordPolicy


class Passwords:
    def __init__(self, settings):
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost,
            parallelism=settings.argon2_parallelism,
        )
        self._dummy = self._hasher.hash("dummy password to equalise timing")
        self.policy = PasswordPolicy(min_length=settings.password_min_length,
                                     min_score=settings.password_min_score)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._dummy, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)

