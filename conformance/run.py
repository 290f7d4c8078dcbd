#!/usr/bin/env python3
"""Reproduce the OpenID Foundation conformance modules of the Basic OP, Config OP and
RP-Initiated Logout plans against any issuer (see conformance/README.md).

One check function per module, named after the module's ``testName``. Each starts from
discovery, drives the provider's login, consent and logout pages as a browser would (a
``requests.Session`` with cookies that fills in the form holding a password field and clicks
the first button of any other form), sends PKCE S256 on every authorization request, and
checks what the module's summary says. It knows nothing about the provider's internals.

    python conformance/run.py --issuer URL --client-id .. --client-secret .. \\
        --client2-id .. --client2-secret .. --post-client-id .. --post-client-secret .. \\
        --redirect-uri .. --username .. --password .. [--post-logout-redirect-uri ..] \\
        [--codereuse-wait 30] [--only MODULE ...]

Prints ``PASS <module>`` (with any warnings), ``FAIL <module>: <reason>`` or
``N/A <module>: <reason>`` per module and, last, ``N passed, M failed``; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import secrets
import sys
import time
import traceback
from dataclasses import dataclass, field
from html.parser import HTMLParser
from ipaddress import ip_address
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import requests
from joserfc import jws, jwt
from joserfc.jwk import KeySet, RSAKey

TIMEOUT = 15
MAX_STEPS = 20
# OIDC Core §3.1.2.6: the errors an OP returns when prompt=none cannot be honoured.
UI_REQUIRED_ERRORS = ("login_required", "interaction_required", "consent_required",
                      "account_selection_required")


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
class Failure(Exception):
    """The module failed; the message is the reason printed after ``FAIL``."""


def check(condition, reason: str) -> None:
    if not condition:
        raise Failure(reason)


@dataclass
class Module:
    name: str
    plan: str
    run: object = None
    not_applicable: str | None = None


MODULES: list[Module] = []


def module(name: str, plan: str):
    def register(fn):
        MODULES.append(Module(name, plan, run=fn))
        return fn
    return register


def not_applicable(name: str, plan: str, reason: str) -> None:
    MODULES.append(Module(name, plan, not_applicable=reason))


# ---------------------------------------------------------------------------------------------
# The browser
# ---------------------------------------------------------------------------------------------
class _Forms(HTMLParser):
    """Collects every form on a page: action, method, inputs and submit buttons."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._current = {"action": attrs.get("action", ""), "method": attrs.get("method", "get"),
                             "inputs": [], "buttons": []}
            self.forms.append(self._current)
        elif self._current is None:
            return
        elif tag == "input":
            kind = attrs.get("type", "text").lower()
            if kind == "submit":
                self._current["buttons"].append((attrs.get("name"), attrs.get("value", "")))
            else:
                self._current["inputs"].append((kind, attrs.get("name"), attrs.get("value", "")))
        elif tag == "button" and attrs.get("type", "submit").lower() == "submit":
            self._current["buttons"].append((attrs.get("name"), attrs.get("value", "")))

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def parse_forms(html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


@dataclass
class Outcome:
    """Where a browser journey ended: a redirect (or form post) leaving the issuer, or a page."""

    kind: str  # "redirect" or "page"
    url: str
    status: int = 0
    text: str = ""
    params: dict = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind == "redirect":
            return f"redirect to {self.url}"
        title = re.search(r"<title>(.*?)</title>", self.text, re.S)
        return f"page {self.url} ({self.status}{': ' + title.group(1).strip() if title else ''})"


class Browser:
    """A person with a browser: follows the issuer's redirects, signs in on the page that asks
    for a password, and clicks the first button of any other form (Allow, Sign out)."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.http = requests.Session()
        self.logins = 0  # how many times a login page was answered
        self.clicks = 0

    def _inside(self, url: str) -> bool:
        issuer = urlsplit(self.ctx.issuer)
        target = urlsplit(url)
        return (target.scheme, target.netloc) == (issuer.scheme, issuer.netloc)

    def open(self, url: str, *, method: str = "GET", params=None, data=None) -> Outcome:
        if method == "GET" and params:
            url = url + ("&" if "?" in url else "?") + urlencode(params)
        response = self.http.request(method, url, data=data, allow_redirects=False, timeout=TIMEOUT)
        return self._walk(response)

    def _walk(self, response: requests.Response) -> Outcome:
        for _ in range(MAX_STEPS):
            if response.is_redirect:
                location = urljoin(response.url, response.headers["Location"])
                if not self._inside(location):
                    return Outcome("redirect", location, response.status_code,
                                   params=dict(parse_qsl(urlsplit(location).query)))
                response = self.http.get(location, allow_redirects=False, timeout=TIMEOUT)
                continue
            forms = parse_forms(response.text) if "html" in response.headers.get("Content-Type", "") else []
            if not forms:
                return Outcome("page", response.url, response.status_code, response.text)
            form = forms[0]
            action = urljoin(response.url, form["action"] or response.url)
            data = [(name, value) for kind, name, value in form["inputs"] if name and kind == "hidden"]
            if not self._inside(action):
                # response_mode=form_post: the page posts the response to the client.
                return Outcome("redirect", action, response.status_code, params=dict(data))
            password_fields = [name for kind, name, _ in form["inputs"] if kind == "password"]
            if password_fields:
                if self.logins >= 4:
                    raise Failure("the login page keeps coming back: are the username and password right?")
                self.logins += 1
                text_fields = [name for kind, name, _ in form["inputs"]
                               if kind in ("text", "email") and name]
                check(text_fields, "the login page has no username field")
                data += [(text_fields[0], self.ctx.username), (password_fields[0], self.ctx.password)]
            else:
                if self.clicks >= 6:
                    raise Failure("too many forms in a row")
                self.clicks += 1
            if form["buttons"]:
                name, value = form["buttons"][0]
                if name:
                    data.append((name, value))
            if form["method"].lower() == "post":
                response = self.http.post(action, data=data, allow_redirects=False, timeout=TIMEOUT)
            else:
                response = self.http.get(action, params=data, allow_redirects=False, timeout=TIMEOUT)
        raise Failure(f"more than {MAX_STEPS} steps without leaving the provider")


# ---------------------------------------------------------------------------------------------
# The relying party's side
# ---------------------------------------------------------------------------------------------
@dataclass
class Client:
    client_id: str
    secret: str
    auth: str = "client_secret_basic"  # or client_secret_post


class Context:
    def __init__(self, args):
        self.issuer = args.issuer  # compared exactly (OIDC Discovery §4.3)
        self.username, self.password = args.username, args.password
        self.redirect_uri = args.redirect_uri
        self.post_logout_redirect_uri = args.post_logout_redirect_uri or args.redirect_uri
        self.codereuse_wait = args.codereuse_wait
        self.client = Client(args.client_id, args.client_secret)
        self.client2 = Client(args.client2_id, args.client2_secret)
        self.post_client = Client(args.post_client_id, args.post_client_secret, "client_secret_post")
        self.http = requests.Session()
        self._metadata = None
        self._jwks = None

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def metadata(self) -> dict:
        if self._metadata is None:
            response = self.http.get(self.discovery_url, timeout=TIMEOUT)
            check(response.status_code == 200, f"discovery answered {response.status_code}")
            self._metadata = response.json()
        return self._metadata

    @property
    def jwks(self) -> dict:
        if self._jwks is None:
            response = self.http.get(self.metadata["jwks_uri"], timeout=TIMEOUT)
            check(response.status_code == 200, f"jwks_uri answered {response.status_code}")
            self._jwks = response.json()
        return self._jwks

    def browser(self) -> Browser:
        return Browser(self)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class Request:
    """One authorization request as sent."""

    client: Client
    params: dict
    verifier: str

    @property
    def state(self):
        return self.params.get("state")

    @property
    def nonce(self):
        return self.params.get("nonce")


def new_request(ctx: Context, client: Client, *, scope="openid", nonce=True, **extra) -> Request:
    verifier, challenge = pkce_pair()
    params = {"client_id": client.client_id, "redirect_uri": ctx.redirect_uri,
              "response_type": "code", "scope": scope, "state": secrets.token_urlsafe(16)}
    if nonce:
        params["nonce"] = secrets.token_urlsafe(16)
    params.update({"code_challenge": challenge, "code_challenge_method": "S256"})
    for key, value in extra.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return Request(client, params, verifier)


def authorize(ctx: Context, browser: Browser, request: Request, *, method="GET") -> Outcome:
    endpoint = ctx.metadata["authorization_endpoint"]
    if method == "POST":
        return browser.open(endpoint, method="POST", data=request.params)
    return browser.open(endpoint, params=request.params)


def callback_params(ctx: Context, outcome: Outcome, request: Request | None = None,
                    redirect_uri: str | None = None) -> dict:
    """The authorization response at the registered redirect URI (query or form_post)."""
    redirect_uri = redirect_uri or ctx.redirect_uri
    check(outcome.kind == "redirect", f"expected a redirect to the client, got {outcome.describe()}")
    got, want = urlsplit(outcome.url), urlsplit(redirect_uri)
    check((got.scheme, got.netloc, got.path) == (want.scheme, want.netloc, want.path),
          f"redirected to {outcome.url}, not to the redirect URI {redirect_uri}")
    params = outcome.params
    if ctx.metadata.get("authorization_response_iss_parameter_supported"):
        # RFC 9207 §2: the iss parameter, when advertised, is in every authorization response.
        check(params.get("iss") == ctx.issuer, f"authorization response iss is {params.get('iss')!r}")
    if request is not None and request.state is not None:
        check(params.get("state") == request.state,
              f"state not returned unchanged (sent {request.state!r}, got {params.get('state')!r})")
    return params


def code_from(ctx: Context, outcome: Outcome, request: Request) -> str:
    params = callback_params(ctx, outcome, request)
    check("error" not in params, f"authorization failed: {params.get('error')}: "
                                 f"{params.get('error_description', '')}")
    check(params.get("code"), "no code in the authorization response")
    return params["code"]


def token_request(ctx: Context, client: Client, data: dict) -> requests.Response:
    data = dict(data)
    auth = None
    if client.auth == "client_secret_post":
        data.update({"client_id": client.client_id, "client_secret": client.secret})
    else:
        auth = (client.client_id, client.secret)
    return ctx.http.post(ctx.metadata["token_endpoint"], data=data, auth=auth, timeout=TIMEOUT)


def redeem(ctx: Context, request: Request, code: str) -> requests.Response:
    return token_request(ctx, request.client, {
        "grant_type": "authorization_code", "code": code, "redirect_uri": request.params["redirect_uri"],
        "code_verifier": request.verifier,
    })


def error_of(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


def left_half_hash(value: str, alg: str) -> str:
    """OIDC Core §3.1.3.6 at_hash / c_hash: the left half of the hash named by the alg."""
    if alg == "EdDSA":
        digest = hashlib.sha512(value.encode()).digest()
    else:
        bits = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[-3:]]
        digest = bits(value.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def decode_unverified(token: str) -> tuple[dict, dict]:
    def part(segment):
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    pieces = token.split(".")
    check(len(pieces) == 3, "the ID token is not a compact JWS")
    return part(pieces[0]), part(pieces[1])


def validate_id_token(ctx: Context, client: Client, token: str, *, nonce: str | None,
                      access_token: str | None = None, max_age_requested=False) -> tuple[dict, dict]:
    """OIDC Core §3.1.3.7 ID token validation, as the suite does it."""
    check(isinstance(token, str) and token, "no id_token")
    header, _ = decode_unverified(token)
    alg = header.get("alg")
    check(alg and alg != "none", f"ID token alg is {alg!r}")
    check(alg in ctx.metadata.get("id_token_signing_alg_values_supported", []),
          f"ID token alg {alg} is not in id_token_signing_alg_values_supported")
    check(header.get("kid"), "ID token header has no kid")
    keys = ctx.jwks.get("keys", [])
    check(any(k.get("kid") == header["kid"] for k in keys), f"kid {header['kid']} is not in the JWKS")
    try:
        decoded = jwt.decode(token, KeySet.import_key_set(ctx.jwks), algorithms=[alg])
    except Exception as exc:  # joserfc raises several types for a bad signature
        raise Failure(f"ID token signature does not verify against jwks_uri: {exc}") from exc
    claims = decoded.claims
    now = time.time()
    check(claims.get("iss") == ctx.issuer, f"ID token iss is {claims.get('iss')!r}")
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    check(client.client_id in auds, f"ID token aud {aud!r} does not contain the client_id")
    if len(auds) > 1:
        check(claims.get("azp") == client.client_id, "ID token with several audiences lacks azp")
    check(isinstance(claims.get("sub"), str) and 0 < len(claims["sub"]) <= 255, "ID token sub is invalid")
    check(isinstance(claims.get("exp"), int | float) and claims["exp"] > now, "ID token exp missing or past")
    check(isinstance(claims.get("iat"), int | float) and claims["iat"] <= now + 300,
          "ID token iat missing or in the future")
    if nonce is not None:
        check(claims.get("nonce") == nonce, f"ID token nonce {claims.get('nonce')!r} is not the one sent")
    if "auth_time" in claims or max_age_requested:
        check(isinstance(claims.get("auth_time"), int | float) and claims["auth_time"] <= now + 300,
              "ID token auth_time missing or invalid")
    if "acr" in claims:
        check(isinstance(claims["acr"], str), "ID token acr is not a string")
    if access_token and "at_hash" in claims:
        check(claims["at_hash"] == left_half_hash(access_token, alg), "ID token at_hash does not match")
    return header, claims


@dataclass
class Flow:
    request: Request
    browser: Browser
    token: dict
    id_claims: dict
    id_header: dict


def code_flow(ctx: Context, client: Client | None = None, browser: Browser | None = None, *,
              method="GET", **params) -> Flow:
    """A whole authorization code flow with token request and ID token validation."""
    client = client or ctx.client
    browser = browser or ctx.browser()
    request = new_request(ctx, client, **params)
    code = code_from(ctx, authorize(ctx, browser, request, method=method), request)
    response = redeem(ctx, request, code)
    check(response.status_code == 200, f"token endpoint answered {response.status_code}: {response.text[:200]}")
    check("application/json" in response.headers.get("Content-Type", ""), "token response is not JSON")
    token = response.json()
    check(str(token.get("token_type", "")).lower() == "bearer", f"token_type is {token.get('token_type')!r}")
    check(token.get("access_token"), "no access_token")
    header, claims = validate_id_token(ctx, client, token.get("id_token"), nonce=request.nonce,
                                       access_token=token["access_token"],
                                       max_age_requested="max_age" in request.params)
    return Flow(request, browser, token, claims, header)


def userinfo(ctx: Context, access_token: str, how: str = "get") -> requests.Response:
    endpoint = ctx.metadata["userinfo_endpoint"]
    if how == "get":
        return ctx.http.get(endpoint, headers={"Authorization": f"Bearer {access_token}"}, timeout=TIMEOUT)
    if how == "post-header":
        return ctx.http.post(endpoint, headers={"Authorization": f"Bearer {access_token}"}, timeout=TIMEOUT)
    return ctx.http.post(endpoint, data={"access_token": access_token}, timeout=TIMEOUT)


STRING_CLAIMS = ("name", "given_name", "family_name", "middle_name", "nickname", "preferred_username",
                 "profile", "picture", "website", "email", "gender", "birthdate", "zoneinfo", "locale",
                 "phone_number")


def userinfo_claims(ctx: Context, flow: Flow, how: str = "get") -> dict:
    response = userinfo(ctx, flow.token["access_token"], how)
    check(response.status_code == 200, f"userinfo ({how}) answered {response.status_code}: {response.text[:200]}")
    check("application/json" in response.headers.get("Content-Type", ""),
          "userinfo response is not JSON (signed userinfo was not requested)")
    body = response.json()
    # OIDC Core §5.3.2: "The sub Claim in the UserInfo Response MUST be verified to exactly
    # match the sub Claim in the ID Token".
    check(body.get("sub") == flow.id_claims["sub"], "userinfo sub differs from the ID token's")
    # OIDC Core §5.1: the standard claims' types.
    for name in STRING_CLAIMS:
        if name in body:
            check(isinstance(body[name], str), f"userinfo {name} is not a string")
    for name in ("email_verified", "phone_number_verified"):
        if name in body:
            check(isinstance(body[name], bool), f"userinfo {name} is not a boolean")
    if "updated_at" in body:
        check(isinstance(body["updated_at"], int | float) and not isinstance(body["updated_at"], bool),
              "userinfo updated_at is not a number")
    if "address" in body:
        check(isinstance(body["address"], dict), "userinfo address is not an object")
    return body


def ui_required_error(ctx: Context, outcome: Outcome, request: Request) -> str:
    params = callback_params(ctx, outcome, request)
    check("code" not in params, "prompt=none issued a code although no one is signed in")
    check(params.get("error") in UI_REQUIRED_ERRORS,
          f"expected one of {', '.join(UI_REQUIRED_ERRORS)}, got {params.get('error')!r}")
    return params["error"]


def is_secure_url(ctx: Context, url) -> bool:
    """https, or http on a loopback issuer's own host (a local test run; see README)."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    issuer = urlsplit(ctx.issuer)
    return (parts.scheme == "http" and issuer.scheme == "http" and _loopback(issuer.hostname)
            and parts.hostname == issuer.hostname)


def _loopback(host) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# Config OP plan
# ---------------------------------------------------------------------------------------------
LOCALE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")


@module("oidcc-discovery-endpoint-verification", "config")
def discovery_endpoint_verification(ctx: Context, warn):
    response = ctx.http.get(ctx.discovery_url, timeout=TIMEOUT)
    check(response.status_code == 200, f"discovery answered {response.status_code}")
    check(response.headers.get("Content-Type", "").split(";")[0].strip() == "application/json",
          f"discovery Content-Type is {response.headers.get('Content-Type')!r}")
    meta = response.json()
    check(ctx.discovery_url.endswith("/.well-known/openid-configuration"), "discovery URL shape")
    # OIDC Discovery §4.3: "The issuer value returned MUST be identical to the Issuer URL".
    check(meta.get("issuer") == ctx.issuer, f"issuer {meta.get('issuer')!r} is not {ctx.issuer!r}")
    parts = urlsplit(ctx.issuer)
    check(parts.scheme in ("https", "http") and parts.hostname and not parts.query and not parts.fragment,
          "issuer is not a valid URL without query and fragment")
    check("code" in meta.get("response_types_supported", []), "response_types_supported lacks 'code'")
    subject_types = meta.get("subject_types_supported")
    check(isinstance(subject_types, list) and subject_types
          and set(subject_types) <= {"public", "pairwise"}, "subject_types_supported invalid")
    algs = meta.get("id_token_signing_alg_values_supported")
    check(isinstance(algs, list) and "RS256" in algs,
          "id_token_signing_alg_values_supported must include RS256 (OIDC Discovery §3)")
    if "userinfo_signing_alg_values_supported" in meta:
        check(isinstance(meta["userinfo_signing_alg_values_supported"], list),
              "userinfo_signing_alg_values_supported is not an array")
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        check(name in meta, f"{name} missing")
    if "userinfo_endpoint" not in meta:
        warn("userinfo_endpoint is RECOMMENDED")
    if "registration_endpoint" in meta:
        check(is_secure_url(ctx, meta["registration_endpoint"]), "registration_endpoint not https")
    keys_response = ctx.http.get(meta["jwks_uri"], timeout=TIMEOUT)
    check(keys_response.status_code == 200, f"jwks_uri answered {keys_response.status_code}")
    jwks = keys_response.json()
    keys = jwks.get("keys")
    check(isinstance(keys, list) and keys, "JWKS has no keys")
    try:
        KeySet.import_key_set(jwks)
    except Exception as exc:
        raise Failure(f"JWKS does not parse: {exc}") from exc
    kids = [k.get("kid") for k in keys]
    check(all(kids), "a JWKS key has no kid")
    check(len(set(kids)) == len(kids), "JWKS kid values are not distinct")
    for key in keys:
        check(key.get("kty") != "oct", "JWKS publishes a symmetric key")
        check(not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key), "JWKS publishes private key material")
    for name in ("request_parameter_supported", "request_uri_parameter_supported",
                 "claims_parameter_supported"):
        if name in meta:
            check(isinstance(meta[name], bool), f"{name} is not a boolean")
    if "request_object_signing_alg_values_supported" in meta and \
            "RS256" not in meta["request_object_signing_alg_values_supported"]:
        warn("request_object_signing_alg_values_supported lacks RS256")
    claims = meta.get("claims_supported")
    if claims is None:
        warn("claims_supported is RECOMMENDED")
    else:
        check(isinstance(claims, list) and all(isinstance(c, str) for c in claims), "claims_supported invalid")
    grants = meta.get("grant_types_supported", ["authorization_code", "implicit"])
    check("authorization_code" in grants, "grant_types_supported lacks authorization_code")
    scopes = meta.get("scopes_supported")
    if scopes is None:
        warn("scopes_supported is RECOMMENDED")
    else:
        check("openid" in scopes, "scopes_supported lacks openid")
        check(all(isinstance(s, str) and s and " " not in s for s in scopes), "scopes_supported syntax")
    for name in ("ui_locales_supported", "claims_locales_supported"):
        for locale in meta.get(name, []):
            check(isinstance(locale, str) and LOCALE.match(locale), f"{name}: {locale!r} is not BCP47")
    endpoints = {k: v for k, v in meta.items() if k.endswith("_endpoint") or k == "jwks_uri"}
    for name, url in endpoints.items():
        check(is_secure_url(ctx, url), f"{name} {url!r} is not https")
    if "code_challenge_methods_supported" in meta:
        check(isinstance(meta["code_challenge_methods_supported"], list),
              "code_challenge_methods_supported is not an array")


# ---------------------------------------------------------------------------------------------
# Basic OP plan
# ---------------------------------------------------------------------------------------------
BASIC = "basic"


@module("oidcc-server", BASIC)
def server(ctx, warn):
    flow = code_flow(ctx)
    keys = ctx.jwks["keys"]
    check(len({k.get("kid") for k in keys}) == len(keys), "JWKS kid values are not distinct")
    userinfo_claims(ctx, flow)


@module("oidcc-response-type-missing", BASIC)
def response_type_missing(ctx, warn):
    request = new_request(ctx, ctx.client, response_type=None)
    outcome = authorize(ctx, ctx.browser(), request)
    if outcome.kind == "page":
        check(outcome.status >= 400 or "error" in outcome.text.lower(),
              f"expected an error page, got {outcome.describe()}")
        return
    params = callback_params(ctx, outcome, request)
    check("code" not in params, "a code was issued without response_type")
    check(params.get("error") in ("unsupported_response_type", "invalid_request"),
          f"error is {params.get('error')!r}, expected unsupported_response_type or invalid_request")


not_applicable("oidcc-idtoken-signature", BASIC,
               "needs a client registered dynamically with the default id_token_signed_response_alg; "
               "with static clients the suite skips it (RS256 is verified in oidcc-server)")
not_applicable("oidcc-idtoken-unsigned", BASIC,
               "needs a client registered dynamically with id_token_signed_response_alg=none; "
               "this provider never issues unsigned ID tokens")


@module("oidcc-userinfo-get", BASIC)
def userinfo_get(ctx, warn):
    userinfo_claims(ctx, code_flow(ctx), "get")


@module("oidcc-userinfo-post-header", BASIC)
def userinfo_post_header(ctx, warn):
    userinfo_claims(ctx, code_flow(ctx), "post-header")


@module("oidcc-userinfo-post-body", BASIC)
def userinfo_post_body(ctx, warn):
    flow = code_flow(ctx)
    response = userinfo(ctx, flow.token["access_token"], "post-body")
    if response.status_code != 200:
        warn(f"access_token in the POST body is not supported ({response.status_code}); optional")
        return
    userinfo_claims(ctx, flow, "post-body")


@module("oidcc-ensure-request-without-nonce-succeeds-for-code-flow", BASIC)
def request_without_nonce(ctx, warn):
    flow = code_flow(ctx, nonce=False)
    check("nonce" not in flow.id_claims, "ID token carries a nonce that was never sent")


def _scope_module(scope: str, expected: tuple[str, ...]):
    def run(ctx, warn):
        wanted = scope.split()[1:]
        missing = [s for s in wanted if s not in ctx.metadata.get("scopes_supported", wanted)]
        flow = code_flow(ctx, scope=scope)
        claims = userinfo_claims(ctx, flow)
        if missing:
            # The suite skips the module when scopes_supported lacks the scope; we still
            # require that the request succeeds (OIDC Core §3.1.2.1: unknown scopes are ignored).
            warn(f"scopes_supported lacks {', '.join(missing)}: the suite skips this module; "
                 "the request still succeeded")
            return
        if not any(name in claims for name in expected):
            warn(f"no {'/'.join(expected)} claim returned for scope {scope!r}")
    return run


for _scope, _claims in (
    ("openid profile", ("name", "family_name", "given_name", "preferred_username", "updated_at")),
    ("openid email", ("email", "email_verified")),
    ("openid address", ("address",)),
    ("openid phone", ("phone_number", "phone_number_verified")),
    ("openid profile email address phone", ("name", "email", "address", "phone_number")),
):
    _name = "all" if _scope.count(" ") > 1 else _scope.split()[1]
    module(f"oidcc-scope-{_name}", BASIC)(_scope_module(_scope, _claims))


@module("oidcc-alternate-happy-flow", BASIC)
def alternate_happy_flow(ctx, warn):
    # Different scope order and parameter order.
    request = new_request(ctx, ctx.client, scope="email profile openid")
    request.params = dict(reversed(list(request.params.items())))
    browser = ctx.browser()
    code = code_from(ctx, authorize(ctx, browser, request), request)
    response = redeem(ctx, request, code)
    check(response.status_code == 200, f"token endpoint answered {response.status_code}")
    validate_id_token(ctx, ctx.client, response.json().get("id_token"), nonce=request.nonce,
                      access_token=response.json().get("access_token"))


@module("oidcc-display-page", BASIC)
def display_page(ctx, warn):
    code_flow(ctx, display="page")


@module("oidcc-display-popup", BASIC)
def display_popup(ctx, warn):
    code_flow(ctx, display="popup")


@module("oidcc-prompt-login", BASIC)
def prompt_login(ctx, warn):
    first = code_flow(ctx)
    time.sleep(1)
    logins = first.browser.logins
    second = code_flow(ctx, browser=first.browser, prompt="login")
    check(second.browser.logins == logins + 1, "prompt=login did not show the login page again")
    if "auth_time" in first.id_claims and "auth_time" in second.id_claims:
        check(second.id_claims["auth_time"] > first.id_claims["auth_time"],
              "auth_time after prompt=login is not later than the first")
    check(second.id_claims["sub"] == first.id_claims["sub"], "sub changed")


@module("oidcc-prompt-none-not-logged-in", BASIC)
def prompt_none_not_logged_in(ctx, warn):
    request = new_request(ctx, ctx.client, prompt="none")
    ui_required_error(ctx, authorize(ctx, ctx.browser(), request), request)


@module("oidcc-prompt-none-logged-in", BASIC)
def prompt_none_logged_in(ctx, warn):
    first = code_flow(ctx)
    logins = first.browser.logins
    second = code_flow(ctx, browser=first.browser, prompt="none")
    check(first.browser.logins == logins, "prompt=none showed a page")
    check(second.id_claims["sub"] == first.id_claims["sub"], "sub differs from the first login")
    if "auth_time" in first.id_claims:
        check(second.id_claims.get("auth_time") == first.id_claims["auth_time"],
              "auth_time differs although no new login happened")


@module("oidcc-max-age-1", BASIC)
def max_age_1(ctx, warn):
    first = code_flow(ctx)
    time.sleep(2)  # as the suite does: max_age=1 is then certainly exceeded
    logins = first.browser.logins
    second = code_flow(ctx, browser=first.browser, max_age="1")
    check(second.browser.logins == logins + 1, "max_age=1 did not make the user log in again")
    check("auth_time" in second.id_claims, "auth_time missing although max_age was requested")
    if "auth_time" in first.id_claims:
        check(second.id_claims["auth_time"] > first.id_claims["auth_time"], "auth_time did not advance")


@module("oidcc-max-age-10000", BASIC)
def max_age_10000(ctx, warn):
    first = code_flow(ctx, max_age="15000")
    logins = first.browser.logins
    second = code_flow(ctx, browser=first.browser, max_age="10000")
    check(second.browser.logins == logins, "max_age=10000 made the user log in again")
    check(second.id_claims["auth_time"] == first.id_claims["auth_time"], "auth_time is not consistent")
    check(second.id_claims["sub"] == first.id_claims["sub"], "sub changed")


@module("oidcc-ensure-request-with-unknown-parameter-succeeds", BASIC)
def unknown_parameter(ctx, warn):
    code_flow(ctx, extra="foobar")


@module("oidcc-id-token-hint", BASIC)
def id_token_hint(ctx, warn):
    first = code_flow(ctx)
    second = code_flow(ctx, browser=first.browser, prompt="none", id_token_hint=first.token["id_token"])
    check(second.id_claims["sub"] == first.id_claims["sub"], "sub differs from the hint's")


@module("oidcc-login-hint", BASIC)
def login_hint(ctx, warn):
    flow = code_flow(ctx, login_hint=ctx.username)
    check(flow.browser.logins == 1, "no login page was shown in a fresh browser")


@module("oidcc-ui-locales", BASIC)
def ui_locales(ctx, warn):
    code_flow(ctx, ui_locales="se")


@module("oidcc-claims-locales", BASIC)
def claims_locales(ctx, warn):
    flow = code_flow(ctx, claims_locales="se")
    userinfo_claims(ctx, flow)


@module("oidcc-ensure-request-with-acr-values-succeeds", BASIC)
def acr_values(ctx, warn):
    values = ctx.metadata.get("acr_values_supported") or ["1", "2"]
    flow = code_flow(ctx, acr_values=" ".join(values))
    if flow.id_claims.get("acr") not in values:
        warn(f"acr {flow.id_claims.get('acr')!r} is not one of the requested {values}")


def _first_access_token_revoked(ctx, access_token, warn):
    response = userinfo(ctx, access_token)
    if response.status_code == 200:
        warn("the access token from the first use of the code still works (SHOULD be revoked)")


@module("oidcc-codereuse", BASIC)
def codereuse(ctx, warn):
    request = new_request(ctx, ctx.client)
    code = code_from(ctx, authorize(ctx, ctx.browser(), request), request)
    first = redeem(ctx, request, code)
    check(first.status_code == 200, f"first use answered {first.status_code}")
    second = redeem(ctx, request, code)
    # RFC 6749 §4.1.2: "If an authorization code is used more than once, the authorization
    # server MUST deny the request".
    check(second.status_code != 200 and "access_token" not in second.text,
          "the second use of the code was accepted")
    if error_of(second) != "invalid_grant":
        warn(f"second use answered error={error_of(second)!r}, expected invalid_grant")
    _first_access_token_revoked(ctx, first.json()["access_token"], warn)


@module("oidcc-codereuse-30seconds", BASIC)
def codereuse_30seconds(ctx, warn):
    request = new_request(ctx, ctx.client)
    code = code_from(ctx, authorize(ctx, ctx.browser(), request), request)
    first = redeem(ctx, request, code)
    check(first.status_code == 200, f"first use answered {first.status_code}")
    time.sleep(ctx.codereuse_wait)
    second = redeem(ctx, request, code)
    check(second.status_code == 400 and error_of(second) == "invalid_grant",
          f"second use after {ctx.codereuse_wait:g} s answered {second.status_code} "
          f"error={error_of(second)!r}; expected 400 invalid_grant")
    _first_access_token_revoked(ctx, first.json()["access_token"], warn)


@module("oidcc-ensure-registered-redirect-uri", BASIC)
def registered_redirect_uri(ctx, warn):
    parts = urlsplit(ctx.redirect_uri)
    bad = f"{parts.scheme}://{parts.netloc}/unregistered-{secrets.token_hex(4)}"
    request = new_request(ctx, ctx.client, redirect_uri=bad)
    outcome = authorize(ctx, ctx.browser(), request)
    # RFC 6749 §4.1.2.1: "the authorization server ... MUST NOT automatically redirect the
    # user-agent to the invalid redirection URI."
    check(outcome.kind == "page", f"expected an error page, got {outcome.describe()}")
    check(outcome.status >= 400, f"the error page answered {outcome.status}")


@module("oidcc-ensure-post-request-succeeds", BASIC)
def post_request(ctx, warn):
    code_flow(ctx, method="POST")


@module("oidcc-server-client-secret-post", BASIC)
def client_secret_post(ctx, warn):
    flow = code_flow(ctx, ctx.post_client)
    userinfo_claims(ctx, flow)


not_applicable("oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported", BASIC,
               "dynamic client registration only (the suite runs it when the client can be "
               "registered with request_object_signing_alg=none)")


def _unsigned_request_object(ctx, request: Request) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    claims = dict(request.params, iss=request.client.client_id, aud=ctx.issuer)
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{body}."


def _request_object_query(ctx, request: Request, redirect_uri: str) -> Request:
    """OIDC Core §6.1: the OAuth-required parameters (and here PKCE) go in the query too."""
    params = {k: request.params[k] for k in ("response_type", "client_id", "scope",
                                             "code_challenge", "code_challenge_method")}
    params.update(redirect_uri=redirect_uri, request=_unsigned_request_object(ctx, request))
    return Request(request.client, params, request.verifier)


@module("oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported", BASIC)
def unsigned_request_object(ctx, warn):
    inner = new_request(ctx, ctx.client)
    outer = _request_object_query(ctx, inner, ctx.redirect_uri)
    outcome = authorize(ctx, ctx.browser(), outer)
    params = callback_params(ctx, outcome)
    if params.get("error") == "request_not_supported":
        return
    # OIDC Core §6.1: ignoring the request object is not compliant.
    check("code" in params, f"expected a code or request_not_supported, got {params.get('error')!r}")
    check(params.get("state") == inner.state, "the request object's state was not returned")
    response = redeem(ctx, inner, params["code"])
    check(response.status_code == 200, f"token endpoint answered {response.status_code}")
    validate_id_token(ctx, ctx.client, response.json().get("id_token"), nonce=inner.nonce)


@module("oidcc-ensure-request-object-with-redirect-uri", BASIC)
def request_object_with_redirect_uri(ctx, warn):
    inner = new_request(ctx, ctx.client)
    invalid = f"{urlsplit(ctx.redirect_uri).scheme}://{urlsplit(ctx.redirect_uri).netloc}/invalid-{secrets.token_hex(4)}"
    outer = _request_object_query(ctx, inner, invalid)
    outcome = authorize(ctx, ctx.browser(), outer)
    check(not (outcome.kind == "redirect" and outcome.url.startswith(invalid)),
          "redirected to the query's redirect_uri instead of the request object's")
    if outcome.kind == "page":
        return  # an invalid-redirect error page: the request object was not used
    params = callback_params(ctx, outcome)
    check(params.get("error") == "request_not_supported" or "code" in params,
          f"unexpected response {params}")


@module("oidcc-claims-essential", BASIC)
def claims_essential(ctx, warn):
    claims = json.dumps({"userinfo": {"name": {"essential": True}}})
    flow = code_flow(ctx, claims=claims)
    if "name" not in userinfo_claims(ctx, flow):
        warn("the essential claim 'name' was not returned")


@module("oidcc-refresh-token", BASIC)
def refresh_token(ctx, warn):
    scope = "openid offline_access" if "offline_access" in ctx.metadata.get("scopes_supported", []) else "openid"
    extra = {"prompt": "consent"} if "offline_access" in scope else {}
    first = code_flow(ctx, scope=scope, **extra)
    refresh = first.token.get("refresh_token")
    if not refresh:
        warn("no refresh token issued: the suite skips this module")
        return
    check(all(0x20 <= ord(c) <= 0x7E for c in refresh), "refresh token has characters outside VSCHAR")
    response = token_request(ctx, ctx.client, {"grant_type": "refresh_token", "refresh_token": refresh})
    check(response.status_code == 200, f"refresh answered {response.status_code}: {response.text[:200]}")
    token = response.json()
    check(token.get("access_token"), "refresh returned no access_token")
    if token.get("id_token"):
        _, claims = validate_id_token(ctx, ctx.client, token["id_token"], nonce=None,
                                      access_token=token["access_token"])
        # OIDC Core §12.2: iss, sub and aud MUST be the same; auth_time the original one.
        check(claims["sub"] == first.id_claims["sub"], "refreshed ID token sub differs")
        if "auth_time" in first.id_claims:
            check(claims.get("auth_time") == first.id_claims["auth_time"], "refreshed auth_time differs")
        if "nonce" in claims:
            check(claims["nonce"] == first.id_claims.get("nonce"), "refreshed nonce differs")
    check(userinfo(ctx, token["access_token"]).status_code == 200, "refreshed access token does not work")
    # The refresh token is bound to the client: client2 gets its own and client1 may not use it.
    second = code_flow(ctx, ctx.client2, scope=scope, **extra)
    refresh2 = second.token.get("refresh_token")
    check(refresh2, "client2 got no refresh token")
    stolen = token_request(ctx, ctx.client, {"grant_type": "refresh_token", "refresh_token": refresh2})
    check(stolen.status_code == 400 and error_of(stolen) == "invalid_grant",
          f"client1 using client2's refresh token answered {stolen.status_code} error={error_of(stolen)!r}")
    # Not in the suite: the refused attempt should not have used up client2's token.
    own = token_request(ctx, ctx.client2, {"grant_type": "refresh_token", "refresh_token": refresh2})
    if own.status_code != 200:
        warn(f"client2's refresh token stopped working after client1 presented it ({own.status_code})")


@module("oidcc-ensure-request-with-valid-pkce-succeeds", BASIC)
def valid_pkce(ctx, warn):
    code_flow(ctx)


# ---------------------------------------------------------------------------------------------
# RP-Initiated Logout plan
# ---------------------------------------------------------------------------------------------
LOGOUT = "rp-initiated-logout"


@module("oidcc-rp-initiated-logout-discovery-endpoint-verification", LOGOUT)
def logout_discovery(ctx, warn):
    endpoint = ctx.metadata.get("end_session_endpoint")
    check(endpoint, "end_session_endpoint missing from discovery")
    check(is_secure_url(ctx, endpoint), f"end_session_endpoint {endpoint!r} is not https")


def end_session(ctx, browser: Browser, params: dict) -> Outcome:
    return browser.open(ctx.metadata["end_session_endpoint"], params=params)


def assert_logged_out(ctx, browser: Browser) -> None:
    """A later prompt=none request must fail with an error that needs a user interface."""
    request = new_request(ctx, ctx.client, prompt="none")
    ui_required_error(ctx, authorize(ctx, browser, request), request)


def assert_no_redirect_to(outcome: Outcome, uri: str) -> None:
    # RP-Initiated Logout §3: "The OP MUST NOT perform post-logout redirection if the
    # post_logout_redirect_uri value supplied does not exactly match" a registered one.
    check(not (outcome.kind == "redirect" and outcome.url.startswith(uri.split("?")[0])),
          f"redirected to {outcome.url}")
    check(outcome.kind == "page", f"expected an error or confirmation page, got {outcome.describe()}")


def _logged_back(ctx, outcome: Outcome, state: str | None) -> None:
    check(outcome.kind == "redirect", f"expected a redirect to post_logout_redirect_uri, got {outcome.describe()}")
    got, want = urlsplit(outcome.url), urlsplit(ctx.post_logout_redirect_uri)
    check((got.scheme, got.netloc, got.path) == (want.scheme, want.netloc, want.path),
          f"redirected to {outcome.url}, not {ctx.post_logout_redirect_uri}")
    if state is None:
        check("state" not in outcome.params, "a state came back although none was sent")
    else:
        check(outcome.params.get("state") == state, "state not returned unchanged")


@module("oidcc-rp-initiated-logout", LOGOUT)
def rp_initiated_logout(ctx, warn):
    flow = code_flow(ctx)
    state = secrets.token_urlsafe(96)[:128]  # a long state, as the suite sends
    outcome = end_session(ctx, flow.browser, {"id_token_hint": flow.token["id_token"],
                                              "post_logout_redirect_uri": ctx.post_logout_redirect_uri,
                                              "state": state})
    _logged_back(ctx, outcome, state)
    assert_logged_out(ctx, flow.browser)


@module("oidcc-rp-initiated-logout-bad-post-logout-redirect-uri", LOGOUT)
def logout_bad_uri(ctx, warn):
    flow = code_flow(ctx)
    parts = urlsplit(ctx.post_logout_redirect_uri)
    bad = f"{parts.scheme}://{parts.netloc}/not-registered-{secrets.token_hex(4)}"
    outcome = end_session(ctx, flow.browser, {"id_token_hint": flow.token["id_token"],
                                              "post_logout_redirect_uri": bad, "state": "x"})
    assert_no_redirect_to(outcome, bad)


@module("oidcc-rp-initiated-logout-modified-id-token-hint", LOGOUT)
def logout_modified_hint(ctx, warn):
    flow = code_flow(ctx)
    _, body, _ = flow.token["id_token"].split(".")
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    outcome = end_session(ctx, flow.browser, {"id_token_hint": f"{header}.{body}.",
                                              "post_logout_redirect_uri": ctx.post_logout_redirect_uri,
                                              "state": "x"})
    assert_no_redirect_to(outcome, ctx.post_logout_redirect_uri)


@module("oidcc-rp-initiated-logout-no-id-token-hint", LOGOUT)
def logout_no_hint(ctx, warn):
    flow = code_flow(ctx)
    outcome = end_session(ctx, flow.browser, {"post_logout_redirect_uri": ctx.post_logout_redirect_uri,
                                              "state": "x"})
    assert_no_redirect_to(outcome, ctx.post_logout_redirect_uri)


@module("oidcc-rp-initiated-logout-no-params", LOGOUT)
def logout_no_params(ctx, warn):
    flow = code_flow(ctx)
    outcome = end_session(ctx, flow.browser, {})
    check(outcome.kind == "page" and outcome.status == 200, f"expected a logged-out page, got {outcome.describe()}")
    assert_logged_out(ctx, flow.browser)


@module("oidcc-rp-initiated-logout-no-post-logout-redirect-uri", LOGOUT)
def logout_no_uri(ctx, warn):
    flow = code_flow(ctx)
    outcome = end_session(ctx, flow.browser, {"id_token_hint": flow.token["id_token"]})
    check(outcome.kind == "page" and outcome.status == 200, f"expected a logged-out page, got {outcome.describe()}")
    assert_logged_out(ctx, flow.browser)


@module("oidcc-rp-initiated-logout-no-state", LOGOUT)
def logout_no_state(ctx, warn):
    flow = code_flow(ctx)
    outcome = end_session(ctx, flow.browser, {"id_token_hint": flow.token["id_token"],
                                              "post_logout_redirect_uri": ctx.post_logout_redirect_uri})
    _logged_back(ctx, outcome, None)
    assert_logged_out(ctx, flow.browser)


@module("oidcc-rp-initiated-logout-only-state", LOGOUT)
def logout_only_state(ctx, warn):
    flow = code_flow(ctx)
    outcome = end_session(ctx, flow.browser, {"state": secrets.token_urlsafe(16)})
    check(outcome.kind == "page" and outcome.status == 200, f"expected a logged-out page, got {outcome.describe()}")
    assert_logged_out(ctx, flow.browser)


@module("oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri", LOGOUT)
def logout_query_added(ctx, warn):
    flow = code_flow(ctx)
    uri = ctx.post_logout_redirect_uri + ("&" if "?" in ctx.post_logout_redirect_uri else "?") + "foo=bar"
    outcome = end_session(ctx, flow.browser, {"id_token_hint": flow.token["id_token"],
                                              "post_logout_redirect_uri": uri, "state": "x"})
    check(not (outcome.kind == "redirect" and "foo=bar" in outcome.url), f"redirected to {outcome.url}")
    check(outcome.kind == "page", f"expected an error or confirmation page, got {outcome.describe()}")


@module("oidcc-rp-initiated-logout-bad-id-token-hint", LOGOUT)
def logout_bad_hint(ctx, warn):
    flow = code_flow(ctx)
    key = RSAKey.generate_key(2048, parameters={"kid": "conformance-runner"})
    forged = jws.serialize_compact({"alg": "RS256", "kid": "conformance-runner"},
                                   json.dumps(flow.id_claims).encode(), key)
    outcome = end_session(ctx, flow.browser, {"id_token_hint": forged,
                                              "post_logout_redirect_uri": ctx.post_logout_redirect_uri,
                                              "state": "x"})
    assert_no_redirect_to(outcome, ctx.post_logout_redirect_uri)


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issuer", required=True)
    for name in ("client", "client2", "post-client"):
        parser.add_argument(f"--{name}-id", required=True)
        parser.add_argument(f"--{name}-secret", required=True)
    parser.add_argument("--redirect-uri", required=True, help="registered for all three clients")
    parser.add_argument("--post-logout-redirect-uri",
                        help="registered for --client-id as a post-logout URI (default: --redirect-uri)")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--codereuse-wait", type=float, default=30.0,
                        help="seconds oidcc-codereuse-30seconds waits before reusing the code (suite: 30)")
    parser.add_argument("--only", action="append", default=[], help="run only this module (repeat)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    ctx = Context(args)
    passed = failed = 0
    unknown = set(args.only) - {m.name for m in MODULES}
    if unknown:
        print(f"unknown module(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    for mod in MODULES:
        if args.only and mod.name not in args.only:
            continue
        if mod.not_applicable:
            print(f"N/A {mod.name}: {mod.not_applicable}", flush=True)
            continue
        warnings: list[str] = []
        try:
            mod.run(ctx, warnings.append)
        except Failure as exc:
            failed += 1
            print(f"FAIL {mod.name}: {exc}", flush=True)
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            failed += 1
            where = traceback.extract_tb(exc.__traceback__)[-1]
            print(f"FAIL {mod.name}: {type(exc).__name__}: {exc} (run.py line {where.lineno})", flush=True)
        else:
            passed += 1
            suffix = f" (warning: {'; '.join(warnings)})" if warnings else ""
            print(f"PASS {mod.name}{suffix}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
