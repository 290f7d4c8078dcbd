"""Signing-key lifecycle, JWKS and encryption at rest."""
