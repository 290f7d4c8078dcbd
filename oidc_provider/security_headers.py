"""The security headers on every answer: the app's (``init_app``), and the ones the serving
lanes (``serving/fast_lane.py``, ``serving/lanes.py``) send with what they answer
themselves, from the same constants."""

from __future__ import annotations

from flask import request

#: On every answer. same-origin, not no-referrer: under https Flask-WTF's CSRF check requires a
#: same-origin Referer on form posts; nothing leaks to other origins.
JSON = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"))
#: Also on every HTML page. No form-action: browsers apply it to the redirects after a form
#: post too, and the consent or login post ends at the client's redirect URI, which may be a
#: private-use scheme (RFC 8252 §7.1) that "*" does not match.
HTML = (
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ("Cache-Control", "no-store"),
)


def init_app(app, settings) -> None:
    @app.after_request
    def security_headers(response):
        for name, value in JSON:
            response.headers.setdefault(name, value)
        if settings.hsts_max_age and request.scheme == "https":
            # RFC 6797 §7.2: "An HSTS Host MUST NOT include the STS header field in HTTP
            # responses conveyed over non-secure transport." No includeSubDomains: the
            # provider cannot know that every other host under its domain serves https.
            response.headers.setdefault("Strict-Transport-Security", f"max-age={settings.hsts_max_age}")
        if response.mimetype == "text/html":
            for name, value in HTML:
                response.headers.setdefault(name, value)
        return response
