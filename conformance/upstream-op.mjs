// node oidc-provider, out of the box, as an upstream for tests/e2e/test_upstream_node_oidc_provider.py:
// one confidential client and one person; its defaults are kept, notably conformIdTokenClaims
// (OIDC Core §5.4: with an access token issued, email and profile claims go to UserInfo only,
// not into the ID token) and its development login and consent pages.
//
//   node conformance/upstream-op.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI[,REDIRECT_URI...]
//
// Prints "ready <issuer>" once listening; stops on SIGTERM.

import Provider from 'oidc-provider'

const [port, clientId, clientSecret, redirectUris] = process.argv.slice(2)
const issuer = `http://127.0.0.1:${port}`
const person = {
  sub: 'node-user-7', email: 'dana@example.org', email_verified: true, name: 'Dana Upstream',
  preferred_username: 'dana'
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId, client_secret: clientSecret, redirect_uris: redirectUris.split(','),
    grant_types: ['authorization_code'], response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic'
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
  // The development login page signs in whatever login is typed: this person is "node-user-7".
  async findAccount (ctx, id) {
    if (id !== person.sub) return undefined
    return { accountId: id, async claims () { return { ...person } } }
  }
})
provider.proxy = false

const server = provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`ready ${issuer}`)
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
