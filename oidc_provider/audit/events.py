"""The audit vocabulary: ``source:subject:action``."""

from enum import StrEnum


class Event(StrEnum):
    LOGIN_SUCCESS = "account:login:success"
    LOGIN_FAILURE = "account:login:failure"
    LOGOUT = "account:session:ended"
    CONSENT_GRANTED = "account:consent:granted"
    CONSENT_DENIED = "account:consent:denied"
    CONSENT_REVOKED = "account:consent:revoked"
    AUTHORIZE_ERROR = "oauth:authorize:error"
    CODE_ISSUED = "oauth:code:issued"
    CODE_REPLAYED = "oauth:code:replayed"
    TOKEN_ERROR = "oauth:token:error"
    REFRESH_REUSED = "oauth:refresh:reused"
    TOKEN_REVOKED = "oauth:token:revoked"
    ACCOUNT_CREATED = "admin:account:created"
    ACCOUNT_UPDATED = "admin:account:updated"
    ACCOUNT_DELETED = "admin:account:deleted"
    CLIENT_CREATED = "admin:client:created"
    CLIENT_UPDATED = "admin:client:updated"
    CLIENT_DELETED = "admin:client:deleted"
    CLIENT_SECRET_ROTATED = "admin:client:secret-rotated"
    SERVICE_CREATED = "admin:service:created"
    KEYS_ROTATED = "admin:keys:rotated"
    CLEANUP = "admin:cleanup:run"
