"""Upstream login (issue 4): connectors to GitHub, Google and any OIDC issuer, the upstream
``state``, and the rules that link an upstream identity to a local account."""
