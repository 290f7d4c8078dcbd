"""OAuth2 requests built from the issuer's public URL, not from whatever host and scheme the
request arrived with (a TLS-terminating proxy may speak http to us), and from stored
parameters when an authorization request resumes after login or consent."""

from collections import defaultdict

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from werkzeug.datastructures import MultiDict


class MultiDictPayload(OAuth2Payload):
    def __init__(self, values: MultiDict):
        self._values = values

    @property
    def data(self):
        return self._values

    @property
    def datalist(self):
        out = defaultdict(list)
        for key, value in self._values.items(multi=True):
            out[key].append(value)
        return out


class ProviderRequest(OAuth2Request):
    def __init__(self, flask_request, issuer: str, values: MultiDict | None = None):
        super().__init__(method=flask_request.method, uri=issuer + flask_request.path,
                         headers=flask_request.headers)
        self._request = flask_request
        self.payload = MultiDictPayload(values if values is not None else flask_request.values)

    @property
    def args(self):
        return self._request.args

    @property
    def form(self):
        return self._request.form
