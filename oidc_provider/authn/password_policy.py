"""The password policy: what a new password must be, following NIST SP 800-63B (Digital
Identity Guidelines, Authentication and Lifecycle Management), rev 4 §3.1.1.2 "Password
Verifiers" (§5.1.1.2 "Memorized Secret Verifiers" in rev 3). Pure: no Flask, no database.

- Length: "Verifiers and CSPs SHALL require passwords that are used as a single-factor
  authentication mechanism to be a minimum of 15 characters in length", and MAY allow passwords
  used only with a second factor to be shorter "but SHALL require them to be at least eight
  characters". Here a password alone signs a person in (``pwd``), so the default minimum is 15;
  an operator whose people all have a second factor may lower it, never below 8. Each Unicode
  code point counts as one character.
- Maximum: "SHOULD permit a maximum password length of at least 64 characters": 1024 here.
- Blocklist: "SHALL compare the prospective secret against a blocklist that contains known
  commonly used, expected, or compromised passwords", including context-specific words "such
  as the name of the service, the username, and derivatives thereof". zxcvbn (Dropbox's
  estimator, its frequency lists of leaked passwords, common words and names, and keyboard
  patterns, repeats and sequences) estimates how many guesses the password takes, with the
  username, email and name as extra dictionary words; a score below ``min_score`` is refused.
  A password equal to or containing the username or the email's local part is refused outright.
- "Verifiers SHALL NOT impose other composition rules (e.g., requiring mixtures of different
  character types)": there are none.
"""

from __future__ import annotations

from dataclasses import dataclass

from zxcvbn import zxcvbn

MIN_LENGTH_FLOOR = 8  # SP 800-63B: "at least eight characters" even with a second factor
MAX_LENGTH = 1024
# zxcvbn's own bound on the text it analyses (its matching grows quickly with length); a longer
# password is judged by its first 72 characters, which can only understate its strength.
ANALYSED = 72
# Names shorter than this are not looked for inside a password ("al" is in "totally").
MIN_CONTAINED = 3


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 15
    min_score: int = 3  # zxcvbn: 3 is "safely unguessable" (at least 10^8 guesses)

    def problem(self, password: str, *, username: str | None = None, email: str | None = None,
                name: str | None = None) -> str | None:
        """Why ``password`` is refused, as words that follow "password" ("must be at least 15
        characters"), or None when it is acceptable."""
        if len(password) < self.min_length:
            return f"must be at least {self.min_length} characters"
        if len(password) > MAX_LENGTH:
            return f"must be at most {MAX_LENGTH} characters"
        folded = password.casefold()
        local_part = email.split("@", 1)[0] if email else None
        for what, value in (("username", username), ("email address", local_part)):
            if value and len(value) >= MIN_CONTAINED and value.casefold() in folded:
                return f"must not contain your {what}"
        words = [w for w in (username, email, local_part, *(name or "").split()) if w]
        estimate = zxcvbn(password[:ANALYSED], user_inputs=words, max_length=ANALYSED)
        if estimate["score"] < self.min_score:
            warning = estimate["feedback"].get("warning") or "it would be guessed too quickly"
            return f"is too easy to guess ({warning.rstrip('.').lower()}): a few random words make a good one"
        return None


def setting_errors(min_length: int, min_score: int) -> list[str]:
    """What is wrong with OIDC_PASSWORD_MIN_LENGTH and OIDC_PASSWORD_MIN_SCORE."""
    errors = []
    if not MIN_LENGTH_FLOOR <= min_length <= 64:
        errors.append(f"OIDC_PASSWORD_MIN_LENGTH must be between {MIN_LENGTH_FLOOR} and 64 "
                      "(NIST SP 800-63B: at least 8, and 15 when a password alone signs in)")
    if not 1 <= min_score <= 4:
        errors.append("OIDC_PASSWORD_MIN_SCORE must be between 1 and 4 (zxcvbn scores)")
    return errors
