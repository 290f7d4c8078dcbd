"""Domain problems an operator's or a caller's request can run into, each with the HTTP status
the admin API answers with (STYLE rule 10: domain inside, protocol at the edge). The message is
public: it names what was wrong, never a secret."""


class Problem(ValueError):
    """The request cannot be carried out as asked (400)."""

    status = 400
    error = "invalid_request"


class NotFound(Problem):
    status = 404
    error = "not_found"


class Conflict(Problem):
    """It would leave things inconsistent (a role still granted, a name taken) (409)."""

    status = 409
    error = "conflict"


class Forbidden(Problem):
    """The caller may not do this (403)."""

    status = 403
    error = "forbidden"


class InsufficientScope(Forbidden):
    """RFC 6750 §3.1 ``insufficient_scope``: "The request requires higher privileges than
    provided by the access token" (403); ``scope`` names what it lacks, for the challenge."""

    error = "insufficient_scope"

    def __init__(self, message: str, *, scope: str):
        super().__init__(message)
        self.scope = scope
