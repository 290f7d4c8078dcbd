"""Table tests for ``authn.totp``: RFC 6238 (TOTP) over RFC 4226 (HOTP), and the otpauth Key
URI format authenticator apps scan. The clock is injected (``now=``); nothing sleeps."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest

from oidc_provider.authn import totp

# RFC 6238 Appendix B / RFC 4226 Appendix D: the ASCII string "12345678901234567890".
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()

# RFC 4226 Appendix D: HOTP values for counters 0..9 with RFC_SECRET (6 digits).
HOTP = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]

# A time inside step T=5 (150..179 s), so steps 3..7 are all at hand.
NOW_IN_STEP_5 = 5 * 30 + 10


@pytest.mark.parametrize("now, step, rfc_8_digits", [
    (59, 0x0000001, "94287082"),
    (1111111109, 0x23523EC, "07081804"),
    (1111111111, 0x23523ED, "14050471"),
    (1234567890, 0x273EF07, "89005924"),
    (2000000000, 0x3F940AA, "69279037"),
    (20000000000, 0x27BC86AA, "65353130"),
])
def test_rfc6238_appendix_b_sha1_test_vectors(now, step, rfc_8_digits):
    """RFC 6238 Appendix B, SHA1 column: the 6-digit code is the last 6 digits of the RFC's
    8-digit value (both are the same HOTP value mod 10^Digit), at step T = floor(time / 30)."""
    assert totp.time_step(now) == step
    assert totp.verify(RFC_SECRET, rfc_8_digits[-6:], now=now, last_counter=None, window=0) == step


@pytest.mark.parametrize("counter, code", list(enumerate(HOTP)))
def test_rfc4226_5_4_appendix_d_values_at_each_time_step(counter, code):
    """RFC 6238 §4: "TOTP = HOTP(K, T)"; RFC 4226 Appendix D gives HOTP(K, C) for C = 0..9."""
    assert totp.verify(RFC_SECRET, code, now=counter * 30 + 29.9, last_counter=None, window=0) == counter


@pytest.mark.parametrize("now, step", [(0, 0), (29.999, 0), (30, 1), (59, 1), (60, 2), (1111111109, 37037036)])
def test_rfc6238_4_2_time_step_is_floor_of_time_over_30(now, step):
    """RFC 6238 §4.2: "T = (Current Unix time - T0) / X, where the default floor function is used"."""
    assert totp.time_step(now) == step


@pytest.mark.parametrize("counter, accepted", [(3, False), (4, True), (5, True), (6, True), (7, False)])
def test_rfc6238_5_2_one_step_either_side_is_accepted_two_are_not(counter, accepted):
    """RFC 6238 §5.2: "We RECOMMEND that at most one time step is allowed as the network delay."
    With window=1 at step 5, codes for steps 4, 5 and 6 are accepted; 3 and 7 are not."""
    expected = counter if accepted else None
    assert totp.verify(RFC_SECRET, HOTP[counter], now=NOW_IN_STEP_5, last_counter=None) == expected


@pytest.mark.parametrize("window, accepted", [(0, {5}), (1, {4, 5, 6}), (2, {3, 4, 5, 6, 7})])
def test_rfc6238_5_2_window_is_the_number_of_steps_either_side(window, accepted):
    """RFC 6238 §5.2: the validation system compares against codes "for each backward step"
    (and forward) within the allowed window, and no others."""
    got = {c for c in range(10) if totp.verify(RFC_SECRET, HOTP[c], now=NOW_IN_STEP_5, last_counter=None,
                                                window=window) == c}
    assert got == accepted


def test_rfc6238_5_2_window_does_not_reach_before_step_zero():
    """RFC 4226 §5.2: C is "the 8-byte counter value"; near the epoch there is no step -1."""
    assert totp.verify(RFC_SECRET, HOTP[0], now=10, last_counter=None) == 0
    assert totp.verify(RFC_SECRET, HOTP[1], now=10, last_counter=None) == 1
    assert totp.verify(RFC_SECRET, HOTP[2], now=10, last_counter=None) is None


def test_rfc6238_5_2_negative_window_is_a_programming_error():
    with pytest.raises(ValueError):
        totp.verify(RFC_SECRET, HOTP[5], now=NOW_IN_STEP_5, last_counter=None, window=-1)


@pytest.mark.parametrize("code_step, now, last_counter, expected", [
    # The same code twice: once accepted (last_counter becomes 5), never again in its window.
    (5, NOW_IN_STEP_5, None, 5),
    (5, NOW_IN_STEP_5, 5, None),
    (5, NOW_IN_STEP_5 + 30, 5, None),  # a step later, step 5 is still inside the window
    # An older code after a newer one: step 6 was accepted, step 5 (or 4) is refused.
    (5, NOW_IN_STEP_5, 6, None),
    (4, NOW_IN_STEP_5, 6, None),
    # A newer code after an older one is fine.
    (6, NOW_IN_STEP_5, 5, 6),
    (5, NOW_IN_STEP_5, 4, 5),
    (4, NOW_IN_STEP_5, 3, 4),
])
def test_rfc6238_5_2_replay_and_older_codes_are_refused(code_step, now, last_counter, expected):
    """RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the OTP after the
    successful validation has been issued for the first OTP". A code whose step is at or before
    the last accepted step is refused."""
    assert totp.verify(RFC_SECRET, HOTP[code_step], now=now, last_counter=last_counter) == expected


def test_rfc6238_5_2_a_sequence_of_logins_accepts_each_code_once():
    """RFC 6238 §5.2: "MUST NOT accept the second attempt of the OTP" - walked as a service would,
    feeding each accepted counter back in."""
    last = None
    outcomes = []
    for code_step, now in [(5, 160), (5, 165), (4, 170), (6, 175), (6, 185), (7, 215)]:
        got = totp.verify(RFC_SECRET, HOTP[code_step], now=now, last_counter=last)
        outcomes.append(got)
        last = got if got is not None else last
    assert outcomes == [5, None, None, 6, None, 7]


@pytest.mark.parametrize("typed, expected", [
    ("254676", 5),
    (" 254 676 ", 5),
    ("254 676", 5),
    ("254676\n", 5),
    ("\t254676", 5),
    ("", None),
    ("   ", None),
    ("25467", None),
    ("2546760", None),
    ("25a676", None),
    ("254-676", None),
    ("+25467", None),
    ("٢٥٤٦٧٦", None),  # 254676 in Arabic-Indic digits: str.isdigit() is True, int() would accept it
    ("２５４６７６", None),  # 254676 in full-width digits
    ("123456", None),  # well formed, wrong
])
def test_rfc4226_5_3_only_six_ascii_digits_are_a_code(typed, expected):
    """RFC 4226 §5.3: the HOTP value is "Digit" decimal digits (6 here); spaces people type to
    group the digits are ignored, anything else is refused."""
    assert totp.verify(RFC_SECRET, typed, now=NOW_IN_STEP_5, last_counter=None) == expected


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", "１２３４５６"])
def test_rfc4226_5_3_malformed_codes_are_refused_before_any_hmac(typed):
    """A malformed code is refused without computing anything: with a secret that is not even
    base32, computing a single HOTP value would raise."""
    assert totp.verify("not base32 !", typed, now=NOW_IN_STEP_5, last_counter=None) is None


def test_rfc4226_4_r6_new_secret_is_160_bits_of_base32():
    """RFC 4226 §4 R6: "We RECOMMEND a shared secret length of 160 bits." Secrets never repeat."""
    secrets = [totp.new_secret() for _ in range(200)]
    assert len(set(secrets)) == 200
    for secret in secrets:
        assert len(secret) == 32
        assert set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        assert len(base64.b32decode(secret)) == 20


def test_rfc6238_4_a_new_secret_verifies_its_own_current_code():
    """RFC 6238 §4: prover and verifier share K and compute the same value for the same T."""
    secret = totp.new_secret()
    now = 1_700_000_000.0
    code = pyotp.TOTP(secret).at(now)
    assert totp.verify(secret, code, now=now, last_counter=None) == totp.time_step(now)


def test_key_uri_format_spells_out_issuer_algorithm_digits_and_period():
    """Key URI format: otpauth://totp/Issuer:account?secret=...&issuer=...; authenticator apps
    expect SHA1, 6 digits and a 30-second period, stated explicitly here."""
    uri = totp.provisioning_uri(RFC_SECRET, account_name="alice@example.com", issuer_name="Example Co")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert parts.path == "/Example%20Co:alice%40example.com"
    assert unquote(parts.path) == "/Example Co:alice@example.com"
    assert parse_qs(parts.query) == {
        "secret": [RFC_SECRET], "issuer": ["Example Co"], "algorithm": ["SHA1"], "digits": ["6"], "period": ["30"],
    }


def test_key_uri_format_round_trips_through_an_independent_parser():
    """The URI a phone scans yields the same secret, parameters and codes as the server uses."""
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, account_name="bob", issuer_name="Example & Co / Test")
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.secret, parsed.name, parsed.issuer) == (secret, "bob", "Example & Co / Test")
    assert (parsed.digits, parsed.interval, parsed.digest().name) == (6, 30, "sha1")
    now = 1_700_000_000
    assert totp.verify(secret, parsed.at(now), now=now, last_counter=None) == totp.time_step(now)


@pytest.mark.parametrize("account_name, issuer_name", [("alice", "Example: Co"), ("a:lice", "Example")])
def test_key_uri_format_refuses_a_colon_in_the_label(account_name, issuer_name):
    """Key URI format: "Neither issuer nor account name may themselves contain a colon"."""
    with pytest.raises(ValueError):
        totp.provisioning_uri(RFC_SECRET, account_name=account_name, issuer_name=issuer_name)


def test_qr_svg_is_an_inline_svg_element_with_no_external_references():
    """The QR code embeds in the page as an <svg> element and fetches nothing."""
    uri = totp.provisioning_uri(RFC_SECRET, account_name="alice", issuer_name="Example")
    svg = totp.qr_svg(uri)
    assert svg.startswith("<svg ")
    assert svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg
    assert "href" not in svg
    assert "<image" not in svg
    assert "<path" in svg
    assert totp.qr_svg(uri) == svg  # deterministic for the same URI
