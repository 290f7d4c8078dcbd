"""JSON APIs for relying parties: the account attributes API (a protected resource taking
bearer access tokens, RFC 6750) with its OpenAPI 3.1 description."""
