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
