"""The authenticated subject handed to Authlib as ``grant_user``: the account plus how and
when it authenticated, so hooks never read ``flask.g`` (STYLE rule 3)."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AuthenticatedSubject:
    account: object
    acr: str | None = None
    amr: list = field(default_factory=list)
    auth_time: int | None = None
    session_id: int | None = None

    def get_user_id(self):
        return self.account.subject
