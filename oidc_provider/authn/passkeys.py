"""WebAuthn passkeys (W3C Web Authentication Level 3): a pure wrapper around py_webauthn.

§5.4 options for ``navigator.credentials.create()`` / ``get()``, §7.1 "Registering a New
Credential" and §7.2 "Verifying an Authentication Assertion". Every failure is one
``PasskeyError`` with a named ``reason``; py_webauthn's wording stays in ``detail`` (for logs,
never for the page). Challenges, their expiry and single use, the stored credential record and
audit belong to the caller: nothing here touches Flask, the database or the clock.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    decode_credential_public_key,
    decoded_public_key_to_cryptography,
    generate_challenge,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import (
    InvalidAuthenticatorDataStructure,
    InvalidBackupFlags,
    InvalidCBORData,
    InvalidJSONStructure,
    WebAuthnException,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from .levels import AMR_HARDWARE_KEY, AMR_SOFTWARE_KEY, AMR_USER_PRESENCE_VERIFIED

# §5.8.5 pubKeyCredParams, most preferred first.
ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
# §15.1: a timeout between 300 000 and 600 000 ms when user verification is preferred; it also
# matches the five minutes after which the caller expires a challenge (DESIGN).
TIMEOUT_MS = 300_000
# §13.4.3: "Challenges SHOULD therefore be at least 16 bytes long."
MIN_CHALLENGE_BYTES = 16
MAX_CREDENTIAL_ID_BYTES = 1023


class Reason(StrEnum):
    MALFORMED = "malformed"
    CLIENT_DATA_TYPE = "client_data_type"
    CHALLENGE = "challenge_mismatch"
    ORIGIN = "origin_mismatch"
    RP_ID = "rp_id_mismatch"
    USER_PRESENCE = "user_presence_missing"
    USER_VERIFICATION = "user_verification_missing"
    ALGORITHM = "unsupported_algorithm"
    ATTESTATION = "attestation_invalid"
    SIGNATURE = "signature_invalid"
    BACKUP_FLAGS = "backup_flags_invalid"
    BACKUP_ELIGIBILITY = "backup_eligibility_changed"
    STORED_KEY = "stored_public_key_invalid"
    SIGN_COUNT = "sign_count_regression"
    INVALID = "invalid_credential"
    # Decided by the caller, which holds the challenges and credential records:
    CHALLENGE_EXPIRED = "challenge_expired"
    CHALLENGE_UNKNOWN = "challenge_unknown"  # never issued, already used, or for another ceremony
    CHALLENGE_FOREIGN = "challenge_foreign_session"  # issued to another browser session
    UNKNOWN_CREDENTIAL = "unknown_credential"
    USER_HANDLE = "user_handle_mismatch"
    ALREADY_REGISTERED = "already_registered"
    ACCOUNT_DISABLED = "account_disabled"


class PasskeyError(Exception):
    """A ceremony failed. ``reason`` is a ``Reason``; ``detail`` is internal and only logged."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class VerifiedPasskey:
    """§7.1 step "Create and store a new credential record": what the caller stores."""

    credential_id: bytes
    public_key: bytes  # COSE_Key, as the authenticator sent it
    sign_count: int
    backup_eligible: bool
    backed_up: bool
    user_verified: bool
    aaguid: str
    transports: list[str]


@dataclass(frozen=True)
class VerifiedAssertion:
    """§7.2: the outcome of a verified assertion; the caller stores ``new_sign_count`` and
    ``backed_up`` on the credential record."""

    credential_id: bytes
    new_sign_count: int
    user_verified: bool
    backed_up: bool
    user_handle: bytes | None
    backup_eligible: bool


@dataclass(frozen=True)
class Presented:
    """What a response *claims* before it is verified: the challenge echoed in clientDataJSON,
    the credential id and (assertions only) the user handle. The caller uses them to find its
    stored challenge and credential record; none of it is trusted until ``verify_*`` passes."""

    challenge: bytes
    credential_id: bytes
    user_handle: bytes | None = None


def presented(credential_json: str | dict, *, ceremony: str) -> Presented:
    """Read a ``create`` (§7.1 step 5-6) or ``get`` (§7.2 step 6-10) response just far enough to
    look things up: "Let C ... be the result of running an implementation-specific JSON parser
    on JSONtext", then C.challenge. Raises ``PasskeyError(MALFORMED)``."""
    parse = parse_registration_credential_json if ceremony == "create" else parse_authentication_credential_json
    with _refusals():
        credential = parse(credential_json)
        challenge = parse_client_data_json(credential.response.client_data_json).challenge
    if not 0 < len(credential.raw_id) <= MAX_CREDENTIAL_ID_BYTES:
        # §5.1 rawId: credential ids are "at most 1023 bytes long".
        raise PasskeyError(Reason.MALFORMED, f"credential id of {len(credential.raw_id)} bytes")
    return Presented(challenge=challenge, credential_id=credential.raw_id,
                     user_handle=getattr(credential.response, "user_handle", None))


def registration_options(
    *, rp_id: str, rp_name: str, user_id: bytes, user_name: str, user_display_name: str,
    exclude_credential_ids: list[bytes], challenge: bytes | None = None,
) -> tuple[dict, bytes]:
    """Options for a discoverable credential (§5.4): residentKey "required", userVerification
    "preferred", attestation "none". Returns the JSON-ready options and the challenge to keep."""
    challenge = _challenge(challenge)
    options = generate_registration_options(
        rp_id=rp_id, rp_name=rp_name, user_id=user_id, user_name=user_name,
        user_display_name=user_display_name, challenge=challenge, timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        # §5.4.3 excludeCredentials: the authenticator refuses to create a second credential
        # for this account.
        exclude_credentials=[PublicKeyCredentialDescriptor(id=cid) for cid in exclude_credential_ids],
        supported_pub_key_algs=ALGORITHMS,
    )
    return json.loads(options_to_json(options)), challenge


def authentication_options(
    *, rp_id: str, allow_credential_ids: list[bytes] | None, challenge: bytes | None = None,
    user_verification: str = "preferred",
) -> tuple[dict, bytes]:
    """Options for ``navigator.credentials.get()`` (§5.5). An empty ``allowCredentials`` lets
    the authenticator offer any discoverable credential for this RP (username-less sign-in)."""
    challenge = _challenge(challenge)
    options = generate_authentication_options(
        rp_id=rp_id, challenge=challenge, timeout=TIMEOUT_MS,
        allow_credentials=[PublicKeyCredentialDescriptor(id=cid) for cid in allow_credential_ids or []],
        user_verification=UserVerificationRequirement(user_verification),
    )
    return json.loads(options_to_json(options)), challenge


def verify_registration(
    *, credential_json: str | dict, expected_challenge: bytes, expected_rp_id: str,
    expected_origins: list[str], require_user_verification: bool,
) -> VerifiedPasskey:
    """§7.1: verify the response to ``navigator.credentials.create()``."""
    with _refusals():
        credential = parse_registration_credential_json(credential_json)
        verified = verify_registration_response(
            credential=credential, expected_challenge=expected_challenge, expected_rp_id=expected_rp_id,
            expected_origin=expected_origins, require_user_verification=require_user_verification,
            supported_pub_key_algs=ALGORITHMS,
        )
    return VerifiedPasskey(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backed_up=verified.credential_backed_up,
        user_verified=verified.user_verified,
        aaguid=verified.aaguid,
        transports=[t.value for t in credential.response.transports or []],
    )


def verify_authentication(
    *, credential_json: str | dict, expected_challenge: bytes, expected_rp_id: str,
    expected_origins: list[str], credential_public_key: bytes, current_sign_count: int,
    backup_eligible: bool, require_user_verification: bool,
) -> VerifiedAssertion:
    """§7.2: verify the response to ``navigator.credentials.get()`` against the stored
    credential record (public key, sign count, backup eligibility)."""
    try:
        decoded_public_key_to_cryptography(decode_credential_public_key(credential_public_key))
    except Exception as exc:
        # Our own record is corrupt: not the user's input, so not "malformed".
        raise PasskeyError(Reason.STORED_KEY, f"{type(exc).__name__}: {exc}") from exc
    with _refusals():
        credential = parse_authentication_credential_json(credential_json)
        # py_webauthn refuses every sign-count regression, which would lock out synced passkeys
        # (they report 0 forever). A stored count of 0 makes it accept any count; the rule is
        # applied below, after the signature, in the spec's order.
        verified = verify_authentication_response(
            credential=credential, expected_challenge=expected_challenge, expected_rp_id=expected_rp_id,
            expected_origin=expected_origins, credential_public_key=credential_public_key,
            credential_current_sign_count=0, require_user_verification=require_user_verification,
        )
    current_be = verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    # §7.2 (backup state step): "If credentialRecord.backupEligible is set, verify that currentBe
    # is set. If credentialRecord.backupEligible is not set, verify that currentBe is not set."
    if current_be != backup_eligible:
        raise PasskeyError(Reason.BACKUP_ELIGIBILITY, f"stored BE={backup_eligible}, assertion BE={current_be}")
    # §7.2 step 21/22 (signCount): "If authData.signCount is nonzero or
    # credentialRecord.signCount is nonzero ... less than or equal to credentialRecord.signCount:
    # This is a signal, but not proof, that the authenticator may be cloned ... Whether the Relying
    # Party ... fails the authentication ceremony or not, is Relying Party-specific."
    # Our rule (DESIGN): refuse, unless the credential is backup-eligible, whose copies on several
    # devices legitimately share one key and do not share one counter.
    new = verified.new_sign_count
    if (new or current_sign_count) and new <= current_sign_count and not backup_eligible:
        raise PasskeyError(Reason.SIGN_COUNT, f"signCount {new} <= stored {current_sign_count}")
    return VerifiedAssertion(
        credential_id=verified.credential_id,
        new_sign_count=new,
        user_verified=verified.user_verified,
        backed_up=verified.credential_backed_up,
        user_handle=credential.response.user_handle,
        backup_eligible=current_be,
    )


def amr_for(verified: VerifiedPasskey | VerifiedAssertion) -> list[str]:
    """RFC 8176 §2 ``amr`` values: "hwk" (proof of possession of a hardware-secured key) for a
    device-bound credential, "swk" (software-secured key) for a synced, backup-eligible one, plus
    "user" when the authenticator verified the user (§6.1 UV flag)."""
    amr = [AMR_SOFTWARE_KEY if verified.backup_eligible else AMR_HARDWARE_KEY]
    if verified.user_verified:
        amr.append(AMR_USER_PRESENCE_VERIFIED)
    return amr


def _challenge(challenge: bytes | None) -> bytes:
    if challenge is None:
        return generate_challenge()
    if len(challenge) < MIN_CHALLENGE_BYTES:
        raise ValueError(f"a WebAuthn challenge needs at least {MIN_CHALLENGE_BYTES} bytes")
    return challenge


# py_webauthn 3.x messages, by prefix, mapped to a reason (tests pin each one).
_REASONS = [
    ("Client data challenge", Reason.CHALLENGE),
    ("Unexpected client data origin", Reason.ORIGIN),
    ("Unexpected client data type", Reason.CLIENT_DATA_TYPE),
    ("Unexpected RP ID hash", Reason.RP_ID),
    ("User presence was required", Reason.USER_PRESENCE),
    ("User was not present", Reason.USER_PRESENCE),
    ("User verification is required", Reason.USER_VERIFICATION),
    ("Could not verify authentication signature", Reason.SIGNATURE),
    ("Unsupported credential public key alg", Reason.ALGORITHM),
    ("Attestation statement could not be verified", Reason.ATTESTATION),
    ("None attestation had unexpected attestation statement", Reason.ATTESTATION),
    ("Unsupported attestation type", Reason.ATTESTATION),
    ("id and raw_id were not equivalent", Reason.MALFORMED),
    ("Unexpected credential type", Reason.MALFORMED),
    ("clientDataJSON was malformed", Reason.MALFORMED),
    ("attestationObject was malformed", Reason.MALFORMED),
    ("authenticatorData was malformed", Reason.MALFORMED),
    ("Authenticator did not provide", Reason.MALFORMED),
    ("Could not parse", Reason.MALFORMED),
]


@contextmanager
def _refusals():
    """Turn anything py_webauthn, json, cbor2 or cryptography raise while reading untrusted
    authenticator output into ``PasskeyError``: the ceremony fails, the page never 500s."""
    try:
        yield
    except Exception as exc:
        raise PasskeyError(_reason(exc), f"{type(exc).__name__}: {exc}") from exc


def _reason(exc: Exception) -> Reason:
    if isinstance(exc, (InvalidJSONStructure, InvalidCBORData, InvalidAuthenticatorDataStructure)):
        return Reason.MALFORMED
    if isinstance(exc, InvalidBackupFlags):
        return Reason.BACKUP_FLAGS
    if isinstance(exc, WebAuthnException):
        message = str(exc)
        return next((reason for prefix, reason in _REASONS if message.startswith(prefix)), Reason.INVALID)
    # ValueError, KeyError, TypeError... from parsing bytes that are not what they claim to be.
    return Reason.MALFORMED
