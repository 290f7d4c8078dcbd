"""``authn.passkeys`` against a software authenticator (W3C WebAuthn Level 3: §5.4/§5.5 options,
§7.1 registration, §7.2 authentication; RFC 8176 ``amr``). Every refusal is a ``PasskeyError``
with an exact ``reason``."""

from __future__ import annotations

import base64
import json

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from oidc_provider.authn.passkeys import (
    PasskeyError,
    Presented,
    Reason,
    VerifiedAssertion,
    VerifiedPasskey,
    amr_for,
    authentication_options,
    presented,
    registration_options,
    verify_authentication,
    verify_registration,
)

from ._authenticator import AAGUID, UP, SoftwareAuthenticator, b64url

RP_ID = "localhost"
ORIGIN = "http://localhost:5000"
CHALLENGE = b"registration-challenge-0123456789"
OTHER_CHALLENGE = b"a-different-challenge-0123456789"
FRESH = object()  # authenticate(): have the authenticator sign a fresh assertion


def register(authenticator: SoftwareAuthenticator, *, challenge: bytes = CHALLENGE, uv_required: bool = False,
             expected_rp_id: str = RP_ID, expected_origins=(ORIGIN,), **create_kw) -> VerifiedPasskey:
    return verify_registration(
        credential_json=json.dumps(authenticator.create(challenge, **create_kw)), expected_challenge=CHALLENGE,
        expected_rp_id=expected_rp_id, expected_origins=list(expected_origins),
        require_user_verification=uv_required,
    )


def authenticate(authenticator: SoftwareAuthenticator, *, stored_sign_count: int = 0,
                 backup_eligible: bool | None = None, uv_required: bool = False, public_key: bytes | None = None,
                 credential=FRESH, expected_rp_id: str = RP_ID, expected_origins=(ORIGIN,),
                 **get_kw) -> VerifiedAssertion:
    return verify_authentication(
        credential_json=authenticator.get(CHALLENGE, **get_kw) if credential is FRESH else credential,
        expected_challenge=CHALLENGE, expected_rp_id=expected_rp_id, expected_origins=list(expected_origins),
        credential_public_key=public_key or authenticator.cose_public_key, current_sign_count=stored_sign_count,
        backup_eligible=authenticator.backup_eligible if backup_eligible is None else backup_eligible,
        require_user_verification=uv_required,
    )


def refusal(call, *args, **kw) -> str:
    with pytest.raises(PasskeyError) as caught:
        call(*args, **kw)
    return caught.value.reason


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


# --- §5.4 / §5.5 options ------------------------------------------------------------------------

def test_5_4_registration_options_ask_for_a_discoverable_credential():
    """§5.4.4: residentKey "required" creates a client-side discoverable credential; §5.8.5
    pubKeyCredParams lists the algorithms the RP accepts, preferred first."""
    options, challenge = registration_options(
        rp_id=RP_ID, rp_name="Example", user_id=b"user-handle-16by", user_name="ada",
        user_display_name="Ada Lovelace", exclude_credential_ids=[b"old-credential-1"], challenge=CHALLENGE,
    )
    assert challenge == CHALLENGE
    assert options == {
        "rp": {"name": "Example", "id": RP_ID},
        "user": {"id": b64url(b"user-handle-16by"), "name": "ada", "displayName": "Ada Lovelace"},
        "challenge": b64url(CHALLENGE),
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -8},
                             {"type": "public-key", "alg": -257}],
        "timeout": 300_000,
        "excludeCredentials": [{"id": b64url(b"old-credential-1"), "type": "public-key"}],
        "authenticatorSelection": {"residentKey": "required", "requireResidentKey": True,
                                   "userVerification": "preferred"},
        "attestation": "none",
    }


def test_5_4_options_generate_a_fresh_challenge_of_at_least_16_bytes():
    """§13.4.3: "Challenges SHOULD therefore be at least 16 bytes long" and unpredictable."""
    first, first_challenge = registration_options(
        rp_id=RP_ID, rp_name="Example", user_id=b"u" * 16, user_name="ada", user_display_name="Ada",
        exclude_credential_ids=[],
    )
    _, second_challenge = authentication_options(rp_id=RP_ID, allow_credential_ids=None)
    assert len(first_challenge) >= 16 and len(second_challenge) >= 16
    assert first_challenge != second_challenge
    assert b64url_decode(first["challenge"]) == first_challenge
    assert first["excludeCredentials"] == []


def test_13_4_3_a_short_challenge_is_a_programming_error():
    """§13.4.3: "Challenges SHOULD therefore be at least 16 bytes long"."""
    with pytest.raises(ValueError):
        authentication_options(rp_id=RP_ID, allow_credential_ids=None, challenge=b"short")


@pytest.mark.parametrize("allow, expected", [
    (None, []),
    ([], []),
    ([b"credential-one", b"credential-two"],
     [{"id": b64url(b"credential-one"), "type": "public-key"},
      {"id": b64url(b"credential-two"), "type": "public-key"}]),
])
def test_5_5_empty_allow_credentials_means_discoverable_credentials(allow, expected):
    """§5.5 allowCredentials: "If not empty, the client MUST return an error if none of the
    listed credentials can be used"; empty lets the authenticator pick a discoverable one."""
    options, challenge = authentication_options(rp_id=RP_ID, allow_credential_ids=allow, challenge=CHALLENGE)
    assert challenge == CHALLENGE
    assert options == {"challenge": b64url(CHALLENGE), "timeout": 300_000, "rpId": RP_ID,
                       "allowCredentials": expected, "userVerification": "preferred"}


def test_5_5_user_verification_can_be_required():
    """§5.5 userVerification: the RP's requirement for this get() operation."""
    options, _ = authentication_options(rp_id=RP_ID, allow_credential_ids=None, user_verification="required")
    assert options["userVerification"] == "required"


# --- §7.1 registration --------------------------------------------------------------------------

def test_7_1_registration_round_trip_returns_the_credential_record():
    """§7.1 step "Create and store a new credential record": id, publicKey, signCount, uvInitialized,
    transports, backupEligible, backupState."""
    authenticator = SoftwareAuthenticator()
    verified = register(authenticator, uv_required=True)
    assert verified == VerifiedPasskey(
        credential_id=authenticator.credential_id, public_key=authenticator.cose_public_key, sign_count=0,
        backup_eligible=False, backed_up=False, user_verified=True,
        aaguid="adce0002-35bc-c60a-648b-0b25f1f05503", transports=["hybrid", "internal"],
    )
    assert AAGUID.hex() == verified.aaguid.replace("-", "")


def test_7_1_registration_of_a_synced_passkey_reports_backup_flags():
    """§7.1: "Let credentialRecord.backupEligible be the value of the BE flag" and backupState
    "the value of the BS flag"."""
    verified = register(SoftwareAuthenticator(backup_eligible=True, backed_up=True))
    assert (verified.backup_eligible, verified.backed_up) == (True, True)


def test_7_1_registration_accepts_a_dict_and_any_expected_origin():
    """§7.1: "Verify that the value of C.origin is an origin expected by the Relying Party"."""
    authenticator = SoftwareAuthenticator()
    verified = verify_registration(
        credential_json=authenticator.create(CHALLENGE), expected_challenge=CHALLENGE, expected_rp_id=RP_ID,
        expected_origins=["https://other.example", ORIGIN], require_user_verification=False,
    )
    assert verified.credential_id == authenticator.credential_id


@pytest.mark.parametrize("create_kw, verify_kw, reason", [
    ({"type": "webauthn.get"}, {}, Reason.CLIENT_DATA_TYPE),
    ({"challenge": OTHER_CHALLENGE}, {}, Reason.CHALLENGE),
    ({"origin": "https://evil.example"}, {}, Reason.ORIGIN),
    ({}, {"expected_origins": []}, Reason.ORIGIN),
    ({"rp_id": "evil.example"}, {}, Reason.RP_ID),
    ({}, {"expected_rp_id": "other.example"}, Reason.RP_ID),
    ({"up": False}, {}, Reason.USER_PRESENCE),
    ({"uv": False}, {"uv_required": True}, Reason.USER_VERIFICATION),
    ({"be": False, "bs": True}, {}, Reason.BACKUP_FLAGS),
])
def test_7_1_registration_refusals(create_kw, verify_kw, reason):
    """§7.1: "Verify that the value of C.type is webauthn.create", "Verify that the value of
    C.challenge equals the base64url encoding of pkOptions.challenge", "Verify that the value of
    C.origin is an origin expected by the Relying Party", "Verify that the rpIdHash in authData is
    the SHA-256 hash of the RP ID expected by the Relying Party", "Verify that the UP bit of the
    flags in authData is set", "If user verification was determined to be required, verify that
    the UV bit of the flags in authData is set", "If the BE bit of the flags in authData is not
    set, verify that the BS bit is not set"."""
    authenticator = SoftwareAuthenticator()
    assert refusal(register, authenticator, **verify_kw, **create_kw) == reason


def test_7_1_user_verification_not_required_accepts_a_missing_uv_flag():
    """§7.1: the UV check applies only "If user verification was determined to be required"."""
    verified = register(SoftwareAuthenticator(), uv=False)
    assert verified.user_verified is False


def test_7_1_unsupported_public_key_algorithm_is_refused():
    """§7.1: "Verify that the "alg" parameter in the credential public key in authData matches the
    alg attribute of one of the items in pkOptions.pubKeyCredParams" (ES384 was not offered)."""
    authenticator = SoftwareAuthenticator()
    numbers = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    es384 = cbor2.dumps({1: 2, 3: -35, -1: 2, -2: numbers.x.to_bytes(48, "big"), -3: numbers.y.to_bytes(48, "big")})
    credential = authenticator.create(CHALLENGE)
    att = cbor2.loads(b64url_decode(credential["response"]["attestationObject"]))
    att["authData"] = att["authData"].replace(authenticator.cose_public_key, es384)
    credential["response"]["attestationObject"] = b64url(cbor2.dumps(att))
    assert refusal(verify_registration, credential_json=credential, expected_challenge=CHALLENGE,
                   expected_rp_id=RP_ID, expected_origins=[ORIGIN],
                   require_user_verification=False) == Reason.ALGORITHM


def test_8_7_none_attestation_with_a_statement_is_refused():
    """§8.7 None Attestation Statement Format: "attStmt" is an empty CBOR map."""
    authenticator = SoftwareAuthenticator()
    credential = authenticator.create(CHALLENGE)
    att = cbor2.loads(b64url_decode(credential["response"]["attestationObject"]))
    att["attStmt"] = {"alg": -7, "sig": b"not-a-signature"}
    credential["response"]["attestationObject"] = b64url(cbor2.dumps(att))
    assert refusal(verify_registration, credential_json=credential, expected_challenge=CHALLENGE,
                   expected_rp_id=RP_ID, expected_origins=[ORIGIN],
                   require_user_verification=False) == Reason.ATTESTATION


# --- §7.2 authentication ------------------------------------------------------------------------

def test_7_2_assertion_round_trip():
    """§7.2: "Using credentialRecord.publicKey, verify that sig is a valid signature over the
    binary concatenation of authData and hash"; the userHandle identifies the account of a
    discoverable credential."""
    authenticator = SoftwareAuthenticator(sign_count=4)
    verified = authenticate(authenticator, stored_sign_count=4, uv_required=True)
    assert verified == VerifiedAssertion(
        credential_id=authenticator.credential_id, new_sign_count=5, user_verified=True, backed_up=False,
        user_handle=authenticator.user_handle, backup_eligible=False,
    )


def test_7_2_assertion_of_a_registered_credential_verifies_with_the_stored_public_key():
    """§7.1 then §7.2: the COSE key stored at registration verifies later assertions."""
    authenticator = SoftwareAuthenticator(backup_eligible=True, backed_up=True)
    record = register(authenticator)
    verified = authenticate(authenticator, public_key=record.public_key, stored_sign_count=record.sign_count,
                            backup_eligible=record.backup_eligible, sign_count=0)
    assert (verified.credential_id, verified.new_sign_count, verified.backed_up) == (record.credential_id, 0, True)


def test_7_2_a_missing_user_handle_is_none():
    """§5.2.2 userHandle: "null" when the authenticator returns none (non-discoverable)."""
    authenticator = SoftwareAuthenticator()
    credential = authenticator.get(CHALLENGE)
    del credential["response"]["userHandle"]
    assert authenticate(authenticator, credential=credential).user_handle is None


@pytest.mark.parametrize("get_kw, verify_kw, reason", [
    ({"type": "webauthn.create"}, {}, Reason.CLIENT_DATA_TYPE),
    ({"origin": "https://evil.example"}, {}, Reason.ORIGIN),
    ({}, {"expected_origins": ["https://other.example"]}, Reason.ORIGIN),
    ({"rp_id": "evil.example"}, {}, Reason.RP_ID),
    ({}, {"expected_rp_id": "other.example"}, Reason.RP_ID),
    ({"up": False}, {}, Reason.USER_PRESENCE),
    ({"uv": False}, {"uv_required": True}, Reason.USER_VERIFICATION),
    ({"be": False, "bs": True}, {}, Reason.BACKUP_FLAGS),
])
def test_7_2_assertion_refusals(get_kw, verify_kw, reason):
    """§7.2: "Verify that the value of C.type is the string webauthn.get", "Verify that the value
    of C.origin is an origin expected by the Relying Party", "Verify that the rpIdHash in authData
    is the SHA-256 hash of the RP ID expected by the Relying Party", "Verify that the UP bit of the
    flags in authData is set", "If user verification was determined to be required, verify that the
    UV bit of the flags in authData is set", "If the BE bit of the flags in authData is not set,
    verify that the BS bit is not set"."""
    assert refusal(authenticate, SoftwareAuthenticator(), **verify_kw, **get_kw) == reason


def test_7_2_wrong_challenge_is_refused():
    """§7.2: "Verify that the value of C.challenge equals the base64url encoding of
    pkOptions.challenge"."""
    authenticator = SoftwareAuthenticator()
    credential = authenticator.get(OTHER_CHALLENGE)
    assert refusal(authenticate, authenticator, credential=credential) == Reason.CHALLENGE


def test_7_2_user_verification_not_required_accepts_a_missing_uv_flag():
    """§7.2: the UV check applies only "If user verification was determined to be required"."""
    assert authenticate(SoftwareAuthenticator(), uv=False).user_verified is False


def _tamper(credential: dict, field: str, mutate) -> dict:
    raw = bytearray(b64url_decode(credential["response"][field]))
    mutate(raw)
    credential["response"][field] = b64url(bytes(raw))
    return credential


def _flip_last_byte(raw: bytearray) -> None:
    raw[-1] ^= 0x01


def _raise_sign_count(raw: bytearray) -> None:
    raw[36] ^= 0x40  # the low byte of the big-endian signCount (§6.1: rpIdHash 32, flags 1, count 4)


def test_7_2_tampered_signature_is_refused():
    """§7.2: "verify that sig is a valid signature over the binary concatenation of authData and
    hash"."""
    authenticator = SoftwareAuthenticator()
    credential = _tamper(authenticator.get(CHALLENGE), "signature", _flip_last_byte)
    assert refusal(authenticate, authenticator, credential=credential) == Reason.SIGNATURE


def test_7_2_authenticator_data_changed_after_signing_is_refused():
    """§7.2: the signature covers authData, so a raised signCount does not verify."""
    authenticator = SoftwareAuthenticator()
    credential = _tamper(authenticator.get(CHALLENGE), "authenticatorData", _raise_sign_count)
    assert refusal(authenticate, authenticator, credential=credential) == Reason.SIGNATURE


def test_7_2_client_data_changed_after_signing_is_refused():
    """§7.2: the signature covers hash = SHA-256(cData)."""
    authenticator = SoftwareAuthenticator()
    credential = authenticator.get(CHALLENGE)
    cdata = json.loads(b64url_decode(credential["response"]["clientDataJSON"]))
    cdata["crossOrigin"] = True
    credential["response"]["clientDataJSON"] = b64url(json.dumps(cdata).encode())
    assert refusal(authenticate, authenticator, credential=credential) == Reason.SIGNATURE


def test_7_2_a_signature_by_another_key_is_refused():
    """§7.2: the signature must verify with credentialRecord.publicKey."""
    authenticator = SoftwareAuthenticator()
    intruder = ec.generate_private_key(ec.SECP256R1())
    assert refusal(authenticate, authenticator, signing_key=intruder) == Reason.SIGNATURE


@pytest.mark.parametrize("backup_eligible, stored, new, refused", [
    (False, 5, 6, False),
    (False, 0, 1, False),
    (False, 0, 0, False),
    (False, 5, 5, True),
    (False, 5, 3, True),
    (False, 5, 0, True),
    (True, 0, 0, False),
    (True, 5, 5, False),
    (True, 5, 0, False),
    (True, 5, 6, False),
])
def test_7_2_sign_count_regression_refused_unless_backup_eligible(backup_eligible, stored, new, refused):
    """§7.2 signCount step: "If authData.signCount is nonzero or credentialRecord.signCount is
    nonzero" and "less than or equal to credentialRecord.signCount: This is a signal, but not proof,
    that the authenticator may be cloned ... whether the Relying Party ... fails the authentication
    ceremony or not, is Relying Party-specific". DESIGN: refused unless backup-eligible."""
    authenticator = SoftwareAuthenticator(backup_eligible=backup_eligible)
    if refused:
        assert refusal(authenticate, authenticator, stored_sign_count=stored, sign_count=new) == Reason.SIGN_COUNT
    else:
        assert authenticate(authenticator, stored_sign_count=stored, sign_count=new).new_sign_count == new


def test_7_2_a_forged_assertion_is_a_bad_signature_before_a_sign_count_regression():
    """§7.2 orders signature verification before the signCount step: an unsigned counter says
    nothing about cloning."""
    authenticator = SoftwareAuthenticator()
    credential = _tamper(authenticator.get(CHALLENGE, sign_count=1), "signature", _flip_last_byte)
    assert refusal(authenticate, authenticator, credential=credential, stored_sign_count=9) == Reason.SIGNATURE


@pytest.mark.parametrize("stored_backup_eligible, assertion_be", [(False, True), (True, False)])
def test_7_2_backup_eligibility_must_match_the_credential_record(stored_backup_eligible, assertion_be):
    """§7.2: "If credentialRecord.backupEligible is set, verify that currentBe is set. If
    credentialRecord.backupEligible is not set, verify that currentBe is not set."""
    authenticator = SoftwareAuthenticator(backup_eligible=assertion_be)
    reason = refusal(authenticate, authenticator, backup_eligible=stored_backup_eligible)
    assert reason == Reason.BACKUP_ELIGIBILITY


# --- malformed input: always PasskeyError("malformed"), never json/webauthn/cbor exceptions ----

def _registration(mutate):
    credential = SoftwareAuthenticator().create(CHALLENGE)
    return mutate(credential)


def _assertion(mutate):
    credential = SoftwareAuthenticator().get(CHALLENGE)
    return mutate(credential)


def _set(path, value):
    def mutate(credential):
        target = credential
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return credential
    return mutate


def _drop(path):
    def mutate(credential):
        target = credential
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        return credential
    return mutate


COMMON_MALFORMED = {
    "not json": lambda c: "{not json",
    "json array": lambda c: "[]",
    "deeply nested json": lambda c: "[" * 100_000,
    "json null": lambda c: None,
    "missing id": _drop(["id"]),
    "missing rawId": _drop(["rawId"]),
    "id is not rawId": _set(["id"], b64url(b"another-credential")),
    "wrong type": _set(["type"], "password"),
    "missing response": _drop(["response"]),
    "response is a list": _set(["response"], []),
    "missing clientDataJSON": _drop(["response", "clientDataJSON"]),
    "clientDataJSON not base64url": _set(["response", "clientDataJSON"], "!!!"),
    "clientDataJSON not json": _set(["response", "clientDataJSON"], b64url(b"\xff\xfe")),
    "clientDataJSON without challenge": _set(
        ["response", "clientDataJSON"], b64url(json.dumps({"type": "webauthn.get", "origin": ORIGIN}).encode())),
    "clientDataJSON challenge not a string": _set(
        ["response", "clientDataJSON"],
        b64url(json.dumps({"type": "webauthn.get", "origin": ORIGIN, "challenge": 7}).encode())),
}


@pytest.mark.parametrize("mutate", [
    *COMMON_MALFORMED.values(),
    _drop(["response", "attestationObject"]),
    _set(["response", "attestationObject"], b64url(b"\xff not cbor")),
    _set(["response", "attestationObject"], b64url(cbor2.dumps({"fmt": "none"}))),
    _set(["response", "attestationObject"], b64url(cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": b"short"}))),
    _set(["response", "attestationObject"], b64url(cbor2.dumps({
        "fmt": "none", "attStmt": {},
        "authData": SoftwareAuthenticator().authenticator_data(flags=UP, sign_count=0),
    }))),
], ids=[*COMMON_MALFORMED, "missing attestationObject", "attestationObject not cbor", "no authData",
        "authData too short", "no attested credential data"])
def test_7_1_malformed_registration_response_is_refused(mutate):
    """§7.1: "Perform CBOR decoding on the attestationObject field ... to obtain the attestation
    statement format fmt, the authenticator data authData, and the attestation statement attStmt";
    anything that does not decode fails the ceremony."""
    credential = _registration(mutate)
    reason = refusal(verify_registration, credential_json=credential, expected_challenge=CHALLENGE,
                     expected_rp_id=RP_ID, expected_origins=[ORIGIN], require_user_verification=False)
    assert reason == Reason.MALFORMED


@pytest.mark.parametrize("mutate", [
    *COMMON_MALFORMED.values(),
    _drop(["response", "authenticatorData"]),
    _drop(["response", "signature"]),
    _set(["response", "authenticatorData"], b64url(b"short")),
    _set(["response", "userHandle"], 42),
], ids=[*COMMON_MALFORMED, "missing authenticatorData", "missing signature", "authenticatorData too short",
        "userHandle not a string"])
def test_7_2_malformed_assertion_is_refused(mutate):
    """§7.2: "Let cData, authData and sig denote the value of response's clientDataJSON,
    authenticatorData, and signature respectively"; a response without them fails the ceremony."""
    authenticator = SoftwareAuthenticator()
    credential = _assertion(mutate)
    assert refusal(authenticate, authenticator, credential=credential) == Reason.MALFORMED


@pytest.mark.parametrize("public_key", [b"\xa1\x01", b"\xff", b"\xa1\x01\x02", cbor2.dumps({1: 2, 3: -7}),
                                        cbor2.dumps({1: 2, 3: -7, -1: 1, -2: b"\x01" * 32, -3: b"\x02" * 32})],
                         ids=["truncated", "not cbor", "not a COSE key", "EC2 without x and y", "point not on P-256"])
def test_7_2_a_stored_public_key_that_does_not_decode_is_refused(public_key):
    """§7.2: the signature is verified with credentialRecord.publicKey; a corrupt record fails the
    ceremony with its own reason instead of raising."""
    authenticator = SoftwareAuthenticator()
    assert refusal(authenticate, authenticator, public_key=public_key) == Reason.STORED_KEY


# --- RFC 8176 amr -------------------------------------------------------------------------------

@pytest.mark.parametrize("backup_eligible, user_verified, amr", [
    (False, False, ["hwk"]),
    (False, True, ["hwk", "user"]),
    (True, False, ["swk"]),
    (True, True, ["swk", "user"]),
])
def test_rfc8176_2_amr_for_a_passkey(backup_eligible, user_verified, amr):
    """RFC 8176 §2: "hwk" Proof-of-Possession of a hardware-secured key, "swk" of a
    software-secured key; "user" for the authenticator's user check."""
    assertion = VerifiedAssertion(credential_id=b"c", new_sign_count=0, user_verified=user_verified,
                                  backed_up=backup_eligible, user_handle=None, backup_eligible=backup_eligible)
    passkey = VerifiedPasskey(credential_id=b"c", public_key=b"k", sign_count=0, backup_eligible=backup_eligible,
                              backed_up=False, user_verified=user_verified, aaguid="", transports=[])
    assert amr_for(assertion) == amr_for(passkey) == amr



# --- what a response claims, before verification (the caller's lookups) -------------------------

def test_7_2_presented_reads_the_challenge_credential_id_and_user_handle():
    """§7.2 steps 5-10: the caller finds the challenge it issued (C.challenge) and the credential
    record (credential.rawId, response.userHandle) before verifying anything."""
    authenticator = SoftwareAuthenticator()
    claimed = presented(authenticator.get(CHALLENGE), ceremony="get")
    assert claimed == Presented(challenge=CHALLENGE, credential_id=authenticator.credential_id,
                                user_handle=authenticator.user_handle)


def test_7_1_presented_reads_a_registration_response():
    authenticator = SoftwareAuthenticator()
    claimed = presented(json.dumps(authenticator.create(CHALLENGE)), ceremony="create")
    assert claimed == Presented(challenge=CHALLENGE, credential_id=authenticator.credential_id, user_handle=None)


# "id is not rawId" is left to verify_*: presented() looks up by rawId only.
PRESENTED_MALFORMED = {k: v for k, v in COMMON_MALFORMED.items() if k != "id is not rawId"}


@pytest.mark.parametrize("mutate", list(PRESENTED_MALFORMED.values()), ids=list(PRESENTED_MALFORMED))
@pytest.mark.parametrize("ceremony", ["create", "get"])
def test_presented_refuses_malformed_responses(mutate, ceremony):
    authenticator = SoftwareAuthenticator()
    credential = authenticator.create(CHALLENGE) if ceremony == "create" else authenticator.get(CHALLENGE)
    assert refusal(presented, mutate(credential), ceremony=ceremony) == Reason.MALFORMED


def test_5_1_a_credential_id_longer_than_1023_bytes_is_malformed():
    """§5.1 rawId / §4 Credential ID: "at most 1023 bytes long"."""
    authenticator = SoftwareAuthenticator(credential_id=b"\x01" * 1024)
    assert refusal(presented, authenticator.get(CHALLENGE), ceremony="get") == Reason.MALFORMED
    assert presented(SoftwareAuthenticator(credential_id=b"\x01" * 1023).get(CHALLENGE),
                     ceremony="get").credential_id == b"\x01" * 1023
