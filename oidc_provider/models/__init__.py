"""SQLAlchemy models, one module per aggregate."""

from . import notify  # noqa: F401 - the triggers that announce changes to cached tables (PostgreSQL)
from .access import DatabaseCredential, PersonalToken, Role, RoleGrant
from .account import Account, RecoveryCode
from .attribute import AccountAttribute
from .audit import AuditEvent
from .client import Client
from .consent import Consent, ConsentGeneration
from .credential import Passkey, WebAuthnChallenge
from .federation import FederatedIdentity, UpstreamState
from .key import SigningKey
from .pending import PendingRequest
from .session import BrowserSession
from .throttle import AuthThrottle
from .token import AuthorizationCode, RefreshToken, RevokedToken, UsedAssertion

__all__ = [
    "Account", "RecoveryCode", "AuditEvent", "AuthThrottle", "Client", "Consent", "ConsentGeneration", "SigningKey",
    "BrowserSession",
    "AuthorizationCode", "RefreshToken", "RevokedToken", "UsedAssertion",
    "AccountAttribute", "DatabaseCredential", "PersonalToken", "Role", "RoleGrant",
    "Passkey", "WebAuthnChallenge", "FederatedIdentity", "UpstreamState", "PendingRequest",
]
