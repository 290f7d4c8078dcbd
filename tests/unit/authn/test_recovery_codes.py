"""Table tests for ``authn.recovery_codes``: codes a person can type, hashed with argon2id
(RFC 9106) through ``authn.passwords.Passwords`` with cheap test settings."""

from __future__ import annotations

import math
import re

import pytest

from oidc_provider.authn import recovery_codes
from oidc_provider.authn.passwords import Passwords

from ...conftest import settings_for

SHAPE = re.compile(r"^[23456789abcdefghijkmnpqrstuvwxyz]{5}-[23456789abcdefghijkmnpqrstuvwxyz]{5}$")


@pytest.fixture(scope="module")
def passwords():
    return Passwords(settings_for())


def test_alphabet_has_no_look_alikes_and_gives_at_least_50_bits():
    """DESIGN: recovery codes are low-entropy secrets a person types; the alphabet leaves out
    0/O, 1/l and I, and a code carries the number of bits the module states (at least 50)."""
    alphabet = recovery_codes.ALPHABET
    assert len(set(alphabet)) == len(alphabet) == 32
    assert set(alphabet).isdisjoint("0oO1lIL")
    assert alphabet == alphabet.lower() and alphabet.isascii() and alphabet.isalnum()
    bits = recovery_codes.LENGTH * math.log2(len(alphabet))
    assert bits == recovery_codes.BITS >= 50


def test_generate_gives_ten_distinct_codes_of_two_groups_of_five():
    """Issue 3: "10 generated at first second-factor enrollment"; each reads as xxxxx-xxxxx."""
    codes = recovery_codes.generate()
    assert len(codes) == 10 == len(set(codes))
    assert all(SHAPE.match(code) for code in codes), codes


@pytest.mark.parametrize("count", [1, 3, 16])
def test_generate_gives_the_count_asked_for(count):
    assert len(set(recovery_codes.generate(count))) == count


@pytest.mark.parametrize("count", [0, -1])
def test_generate_refuses_a_count_below_one(count):
    with pytest.raises(ValueError):
        recovery_codes.generate(count)


def test_generated_codes_do_not_repeat_and_use_the_whole_alphabet():
    """Codes come from a CSPRNG: 5,000 codes never repeat, every position varies, and every
    symbol of the alphabet shows up."""
    codes = [code for _ in range(500) for code in recovery_codes.generate()]
    assert len(set(codes)) == len(codes) == 5000
    assert all(SHAPE.match(code) for code in codes)
    raw = [code.replace("-", "") for code in codes]
    assert set("".join(raw)) == set(recovery_codes.ALPHABET)
    for position in range(recovery_codes.LENGTH):
        assert len({r[position] for r in raw}) > 20


@pytest.mark.parametrize("typed, expected", [
    ("k7m2p-x9qrt", "k7m2px9qrt"),
    ("k7m2px9qrt", "k7m2px9qrt"),
    ("K7M2P-X9QRT", "k7m2px9qrt"),
    ("  k7m2p x9qrt ", "k7m2px9qrt"),
    ("k7m2p - x9qrt\n", "k7m2px9qrt"),
    ("k-7-m-2-p-x-9-q-r-t", "k7m2px9qrt"),
    ("k7m2p--x9qrt", "k7m2px9qrt"),
    ("", None),
    ("-", None),
    ("k7m2p-x9qr", None),  # too short
    ("k7m2p-x9qrtt", None),  # too long
    ("k7m2p-x9q0t", None),  # 0 is not in the alphabet
    ("k7m2p-x9qot", None),  # o
    ("k7m2p-x9q1t", None),  # 1
    ("k7m2p-x9qlt", None),  # l
    ("k7m2p_x9qrt", None),  # underscore is not a separator
    ("k7m2p-x9qr!", None),
    ("k7m2p-x9qr٣", None),  # Arabic-Indic three
    ("ｋ7m2p-x9qrt", None),  # full-width k
])
def test_normalize_table(typed, expected):
    """A typed code is compared in one canonical form: lower-case, no spaces or dashes; anything
    of the wrong length or outside the alphabet is refused."""
    assert recovery_codes.normalize(typed) == expected


def test_every_generated_code_normalizes_to_itself_without_the_dash():
    for code in recovery_codes.generate(50):
        assert recovery_codes.normalize(code) == code.replace("-", "")


def test_hash_all_gives_one_argon2id_hash_per_code_in_order(passwords):
    """RFC 9106: stored as argon2id hashes, never the codes themselves."""
    codes = recovery_codes.generate(3)
    hashes = recovery_codes.hash_all(passwords, codes)
    assert len(hashes) == 3
    for code, stored in zip(codes, hashes, strict=True):
        assert stored.startswith("$argon2id$")
        assert code not in stored and code.replace("-", "") not in stored
        assert passwords.verify(stored, code.replace("-", ""))


def test_hash_all_refuses_something_that_is_not_a_code(passwords):
    with pytest.raises(ValueError):
        recovery_codes.hash_all(passwords, ["k7m2p-x9qrt", "not a code"])


@pytest.fixture(scope="module")
def stored(passwords):
    codes = recovery_codes.generate(4)
    return codes, recovery_codes.hash_all(passwords, codes)


@pytest.mark.parametrize("index", range(4))
def test_match_finds_the_index_of_the_code_typed(passwords, stored, index):
    codes, hashes = stored
    assert recovery_codes.match(passwords, codes[index], hashes) == index


@pytest.mark.parametrize("variant", [str.upper, lambda c: c.replace("-", ""), lambda c: f" {c[:5]} {c[6:]} "])
def test_match_accepts_the_code_as_people_type_it(passwords, stored, variant):
    codes, hashes = stored
    assert recovery_codes.match(passwords, variant(codes[2]), hashes) == 2


def test_match_refuses_a_code_not_in_the_set(passwords, stored):
    codes, hashes = stored
    other = next(c for c in recovery_codes.generate(20) if c not in codes)
    assert recovery_codes.match(passwords, other, hashes) is None


@pytest.mark.parametrize("typed", ["", "k7m2p", "k7m2p-x9q0t", "not a code at all"])
def test_match_refuses_malformed_input(passwords, stored, typed):
    _, hashes = stored
    assert recovery_codes.match(passwords, typed, hashes) is None


def test_match_never_matches_a_spent_code(passwords, stored):
    """DESIGN: recovery codes are single use. The caller marks a used slot spent (None here); the
    same code then matches nothing, while the others still match their own index."""
    codes, hashes = stored
    spent = list(hashes)
    spent[1] = None
    assert recovery_codes.match(passwords, codes[1], spent) is None
    assert recovery_codes.match(passwords, codes[3], spent) == 3


def test_match_against_an_empty_set_is_none(passwords):
    assert recovery_codes.match(passwords, "k7m2p-x9qrt", []) is None
