"""Time-based one-time passwords: RFC 6238 (TOTP) over RFC 4226 (HOTP), with the parameters
authenticator apps expect (HMAC-SHA1, 6 digits, 30-second steps, T0 = 0), and the
``otpauth://`` Key URI format those apps scan.

Pure: pyotp computes the HOTP values, segno draws the QR code; the caller keeps the secret
(encrypted at rest), the last accepted time-step, the rate limit and the audit trail.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote, urlencode

import pyotp
import segno

DIGITS = 6
PERIOD = 30  # seconds, RFC 6238 §4.1 "X"
ALGORITHM = "SHA1"
SECRET_BYTES = 20  # RFC 4226 §4 R6: "We RECOMMEND a shared secret length of 160 bits."


def new_secret() -> str:
    """A fresh 160-bit shared secret, base32 without padding (32 characters)."""
    # pyotp draws each character with `secrets.choice` from the 32-symbol alphabet: 5 bits each.
    return pyotp.random_base32(length=SECRET_BYTES * 8 // 5)


def provisioning_uri(secret: str, *, account_name: str, issuer_name: str) -> str:
    """The ``otpauth://totp/Issuer:account?...`` URI, with every parameter spelt out.

    The Key URI format forbids a colon in the issuer or the account name (it separates the two
    in the label), so either one containing a colon is a ``ValueError``.
    """
    if ":" in issuer_name or ":" in account_name:
        raise ValueError("issuer_name and account_name must not contain ':'")
    label = quote(issuer_name, safe="") + ":" + quote(account_name, safe="")
    query = urlencode(
        {"secret": secret, "issuer": issuer_name, "algorithm": ALGORITHM, "digits": DIGITS, "period": PERIOD},
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


def qr_svg(uri: str) -> str:
    """The URI as a QR code: an inline ``<svg>`` element (no XML declaration, no external
    references) to embed in the enrolment page next to the URI in text."""
    return segno.make(uri, error="m", micro=False).svg_inline(scale=4, title="TOTP enrolment QR code")


def time_step(now: float) -> int:
    """RFC 6238 §4.2: T = floor((Current Unix time - T0) / X), with T0 = 0 and X = 30."""
    return int(now // PERIOD)


def _well_formed(code: str) -> str | None:
    code = "".join(code.split())
    # str.isdigit() would accept "١٢٣٤٥٦" (Arabic-Indic digits); only ASCII digits are a code.
    if len(code) != DIGITS or not all("0" <= c <= "9" for c in code):
        return None
    return code


def verify(secret: str, code: str, *, now: float, last_counter: int | None, window: int = 1) -> int | None:
    """Check ``code`` against the time-steps within ``window`` of ``now``; return the matched
    time-step counter (to store as the next ``last_counter``), or None.

    Whitespace is ignored; anything but six ASCII digits is refused before any HMAC is
    computed. Every candidate step is computed and compared with ``hmac.compare_digest``, with
    no early exit, so timing does not reveal which step matched or how close a guess was.
    """
    if window < 0:
        raise ValueError("window must be >= 0")
    typed = _well_formed(code)
    if typed is None:
        return None
    otp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    current = time_step(now)
    matched = None
    # RFC 6238 §5.2: "We RECOMMEND that at most one time step is allowed as the network delay."
    for counter in range(max(current - window, 0), current + window + 1):
        equal = hmac.compare_digest(otp.generate_otp(counter).encode(), typed.encode())
        # RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the OTP after the
        # successful validation has been issued for the first OTP". Refusing every step at or
        # before the last accepted one also refuses an older code after a newer one.
        fresh = last_counter is None or counter > last_counter
        # If two steps share a code, keep the latest: everything up to it is then spent.
        if equal and fresh:
            matched = counter
    return matched
