"""Clients' public keys for ``private_key_jwt`` (RFC 7523 §2.2, OIDC Core §9): what a JWK set
may hold, and the sets published at a client's ``jwks_uri`` (OIDC Core §10.1.1, RFC 7591 §2).

A JWK set here holds public asymmetric keys only: a private member means the client leaked its
private key, and a symmetric (``oct``) key published at a URL or handed to an admin would let
anyone who read it sign assertions.

The host name is resolved when the set is fetched, and refused if any address it resolves to
is loopback (unless ``OIDC_JWKS_URI_ALLOW_LOOPBACK``), private, link-local, shared or otherwise
not public (server-side request forgery: cloud metadata at 169.254.169.254, internal hosts);
the connection then goes to the address that was checked, with the name kept for ``Host`` and
TLS (SNI and certificate checks), so a name re-pointed between the check and the connection
(DNS rebinding) reaches nothing new.

Fetched sets are cached per URL in the process for ``CACHE_SECONDS``: a cache, not shared
state, since every process can fetch the same set. An assertion whose ``kid`` the cached set
lacks triggers one refetch, at most once per ``REFETCH_SECONDS`` per URL, which is how OIDC
Core §10.1.1 lets a client rotate: "the RP publishes the new key at its jwks_uri and includes
the kid of the new key in the JOSE Header ... to indicate to the verifier that the new key
needs to be fetched". Failures are refused as ``invalid_client`` by the caller and logged
without the response body.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
import urllib3
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, KeySet

from ..settings import is_loopback_host

log = logging.getLogger(__name__)

# RFC 7517 §6.2.2 and §6.3.2 (RSA and EC private parameters), RFC 8037 §2 (OKP "d"),
# RFC 7518 §6.4.1 (the symmetric "k").
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
KEY_TYPES = ("RSA", "EC", "OKP")
MAX_KEYS = 20
MIN_RSA_BITS = 2048
MAX_URI_LENGTH = 2000
CACHE_SECONDS = 300
REFETCH_SECONDS = 30
TIMEOUT_SECONDS = 5
MAX_BYTES = 64 * 1024


class KeySetError(ValueError):
    """Not a usable public JWK set; the message says why (never quoting key material)."""


class RemoteKeyError(Exception):
    """The set at a jwks_uri could not be fetched or used."""


def public_key_set(data, *, ignore_unknown: bool = False) -> tuple[KeySet, list[dict]]:
    """(the KeySet, the member dicts kept). RFC 7517 §5: a key of a type not understood may be
    ignored (``ignore_unknown``, for fetched sets) instead of failing the whole set."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list) or not data["keys"]:
        raise KeySetError('a JWK set is an object with a non-empty "keys" list')
    if len(data["keys"]) > MAX_KEYS:
        raise KeySetError(f"a JWK set holds at most {MAX_KEYS} keys")
    keys, kept = [], []
    for item in data["keys"]:
        if not isinstance(item, dict):
            raise KeySetError("each key of a JWK set is an object")
        private = sorted(set(PRIVATE_MEMBERS) & set(item))
        if private:
            raise KeySetError(f"the JWK set holds private or symmetric key material ({', '.join(private)}); "
                              "register the public key only")
        if item.get("kty") not in KEY_TYPES:
            if ignore_unknown:
                continue
            raise KeySetError(f"key type must be one of {', '.join(KEY_TYPES)}")
        try:
            key = JWKRegistry.import_key(item)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise KeySetError(f"a {item['kty']} key is malformed") from exc
        if item["kty"] == "OKP" and item.get("crv") != "Ed25519":
            # RFC 8037 §3.1: Ed25519 signs (EdDSA); X25519 and X448 only agree keys.
            if ignore_unknown:
                continue
            raise KeySetError("OKP keys must be Ed25519 (signing keys)")
        if item["kty"] == "RSA" and key.raw_value.key_size < MIN_RSA_BITS:
            raise KeySetError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
        keys.append(key)
        kept.append(item)
    if not keys:
        raise KeySetError(f"the JWK set holds no {', '.join(KEY_TYPES)} key")
    key_set = KeySet(keys)  # gives each key without a kid its RFC 7638 thumbprint
    kids = [k.kid for k in key_set]
    if len(set(kids)) != len(kids):
        raise KeySetError("two keys of the JWK set share a kid")
    return key_set, kept


def check_jwks_uri(uri) -> str:
    """https, or http on a loopback host only (the same rule as the issuer's)."""
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI_LENGTH:
        raise KeySetError(f"jwks_uri must be a URL of at most {MAX_URI_LENGTH} characters")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise KeySetError("jwks_uri is not a valid URL") from None
    if parts.username is not None or parts.password is not None or parts.fragment or not parts.hostname \
            or any(c.isspace() or not c.isprintable() for c in uri):
        raise KeySetError("jwks_uri must be an absolute URL with a host and no credentials or fragment")
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_host(parts.hostname)):
        raise KeySetError("jwks_uri must use https (http only on a loopback host)")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return uri  # a name: see docs/security-model.md on jwks_uri requests
    if not address.is_loopback and (address.is_link_local or address.is_private or address.is_reserved
                                    or address.is_multicast or address.is_unspecified):
        # Cloud metadata services and internal hosts by address (169.254.169.254, 10.0.0.1...).
        raise KeySetError("jwks_uri must not be a link-local, private or reserved address")
    return uri


def public_address(host: str, port: int, *, allow_loopback: bool = False) -> str:
    """The address to connect to for ``host``: every address the name resolves to must be
    public (``ipaddress``'s ``is_global``: not private, link-local, shared, reserved or
    unspecified) and not multicast; loopback only with ``allow_loopback``. Raises
    RemoteKeyError, naming no address."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        raise RemoteKeyError("the host name does not resolve") from None
    addresses = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address.is_loopback:
            if not allow_loopback:
                raise RemoteKeyError("the host resolves to a loopback address")
        elif not address.is_global or address.is_multicast:
            raise RemoteKeyError("the host resolves to a private, link-local or reserved address")
        addresses.append(str(address))
    if not addresses:
        raise RemoteKeyError("the host name does not resolve")
    return addresses[0]


def fetch(url: str, *, allow_loopback: bool = False) -> KeySet:
    """GET the set from the checked address (``public_address``): no redirects, no proxy,
    ``TIMEOUT_SECONDS`` in all, at most ``MAX_BYTES``."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = public_address(parts.hostname or "", port, allow_loopback=allow_loopback)
    timeout = urllib3.Timeout(connect=TIMEOUT_SECONDS, read=TIMEOUT_SECONDS)
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=requests.certs.where())
        pool = urllib3.HTTPSConnectionPool(address, port, timeout=timeout, retries=False, ssl_context=context,
                                           server_hostname=parts.hostname, assert_hostname=parts.hostname)
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname if ":" not in (parts.hostname or "") else f"[{parts.hostname}]"
    body = b""
    try:
        with pool:
            response = pool.urlopen("GET", target, redirect=False, preload_content=False, retries=False, headers={
                "Host": f"{host}:{parts.port}" if parts.port else host,
                "Accept": "application/jwk-set+json, application/json"})
            try:
                if response.status != 200:
                    raise RemoteKeyError(f"HTTP status {response.status}")
                for chunk in response.stream(8192):
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise RemoteKeyError(f"the response is larger than {MAX_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise RemoteKeyError(f"the response took longer than {TIMEOUT_SECONDS} s")
            finally:
                response.release_conn()
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        raise RemoteKeyError(type(exc).__name__) from None
    try:
        return public_key_set(json.loads(body), ignore_unknown=True)[0]
    except ValueError as exc:  # JSON errors and KeySetError
        raise RemoteKeyError("not a public JWK set" if isinstance(exc, KeySetError) else "not JSON") from None


@dataclass
class _Entry:
    keys: KeySet | None
    kids: frozenset
    fetched_at: float | None
    attempted_at: float


class RemoteKeySets:
    """The per-process cache of jwks_uri sets; ``fetcher`` and ``clock`` are injectable.
    Requests for one URL wait for a fetch in flight instead of failing or fetching twice."""

    def __init__(self, *, fetcher=None, clock=time.monotonic, allow_loopback: bool = False):
        self._fetch = fetcher or functools.partial(fetch, allow_loopback=allow_loopback)
        self._clock = clock
        self._lock = threading.Lock()
        self._url_locks: dict[str, threading.Lock] = {}
        self._entries: dict[str, _Entry] = {}

    def get(self, url: str, kid: str | None, *, client_id: str = "", before_fetch=None) -> KeySet:
        """The set at ``url`` for an assertion naming ``kid``. ``before_fetch`` is called just
        before a request goes out (the caller ends its database transaction there: no lock is
        held while a remote host answers)."""
        with self._lock:
            url_lock = self._url_locks.setdefault(url, threading.Lock())
        with url_lock:
            now = self._clock()
            entry = self._entries.get(url)
            fresh = entry is not None and entry.keys is not None and now - entry.fetched_at < CACHE_SECONDS
            if fresh and (kid is None or kid in entry.kids):
                return entry.keys
            if entry is not None and now - entry.attempted_at < REFETCH_SECONDS:
                if fresh:
                    return entry.keys  # the unknown kid finds no key: the assertion fails
                raise RemoteKeyError("the last fetch failed moments ago")
            if entry is None:
                entry = self._entries[url] = _Entry(None, frozenset(), None, now)
            entry.attempted_at = now
            if before_fetch is not None:
                before_fetch()
            try:
                keys = self._fetch(url)
            except RemoteKeyError as exc:
                # The URL without its query (which could carry a token); never the response body.
                parts = urlsplit(url)
                log.warning("oauth:jwks-uri:fetch-failed", extra={"fields": {
                    "event": "oauth:jwks-uri:fetch-failed", "client": client_id,
                    "jwks_uri": f"{parts.scheme}://{parts.netloc}{parts.path}"[:300], "reason": str(exc)}})
                raise
            self._entries[url] = _Entry(keys, frozenset(k.kid for k in keys), self._clock(), now)
            return keys
