"""Admin operations: one registry of what an operator can do, run the same way by the CLI on
the server (``oidc-provider ...``), by the admin API (``/api/admin``) and by the CLI acting
through that API from another machine (``oidc-provider --server URL --token-file F ...``)."""

from . import accounts, audit, clients, roles, services, tokens  # noqa: F401 - each registers its operations
from .ops import OPERATIONS, Caller, Operation, Param, Permission, run  # noqa: F401
