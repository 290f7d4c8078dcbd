// A relying party built on openid-client v6, run against a live provider by
// tests/e2e/test_openid_client.py (and usable by hand against any issuer).
//
//   node conformance/rp.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI USERNAME PASSWORD [POST_LOGOUT_REDIRECT_URI]
//
// or the same values in RP_ISSUER, RP_CLIENT_ID, RP_CLIENT_SECRET, RP_REDIRECT_URI, RP_USERNAME,
// RP_PASSWORD, RP_POST_LOGOUT_REDIRECT_URI. It discovers the issuer, signs in with PKCE S256, a
// nonce and a state (driving the login and consent pages with fetch, keeping cookies by hand),
// redeems the code (openid-client validates the ID token), calls UserInfo, refreshes, revokes the
// new refresh token, checks that refreshing with it now fails, and follows the end-session URL.
// Prints one JSON object; exits 1 on any failure.

import * as oidc from 'openid-client'

const argv = process.argv.slice(2)
const env = process.env
const settings = {
  issuer: argv[0] ?? env.RP_ISSUER,
  clientId: argv[1] ?? env.RP_CLIENT_ID,
  clientSecret: argv[2] ?? env.RP_CLIENT_SECRET,
  redirectUri: argv[3] ?? env.RP_REDIRECT_URI,
  username: argv[4] ?? env.RP_USERNAME,
  password: argv[5] ?? env.RP_PASSWORD,
  postLogoutRedirectUri: argv[6] ?? env.RP_POST_LOGOUT_REDIRECT_URI,
}
const MAX_STEPS = 12

function fail (message) {
  throw new Error(message)
}

/** A browser's cookie jar for one origin, kept by hand (fetch keeps none). */
class Browser {
  constructor (origin) {
    this.origin = origin
    this.cookies = new Map()
    this.pages = []
  }

  async request (url, init = {}) {
    const headers = new Headers(init.headers ?? {})
    if (new URL(url).origin === this.origin && this.cookies.size) {
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '))
    }
    const response = await fetch(url, { ...init, headers, redirect: 'manual' })
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a))
      if (expired || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
    return response
  }

  /** Walk the provider's pages from `url`; return the first redirect that leaves it. */
  async journey (url) {
    let response = await this.request(url)
    let current = url
    for (let step = 0; step < MAX_STEPS; step++) {
      if (response.status >= 300 && response.status < 400) {
        const location = new URL(response.headers.get('location'), current).href
        if (new URL(location).origin !== this.origin) return location
        current = location
        response = await this.request(location)
        continue
      }
      const html = await response.text()
      const form = parseForm(html, current)
      if (response.status === 200 && form?.fields.has('password')) {
        this.pages.push('login')
        form.fields.set('username', settings.username)
        form.fields.set('password', settings.password)
      } else if (response.status === 200 && /name="decision"/.test(html)) {
        this.pages.push('consent')
        form.fields.set('decision', 'allow')
      } else {
        fail(`stopped on ${current} (${response.status}): ${html.slice(0, 300)}`)
      }
      if (!form.fields.get('csrf_token')) fail(`no csrf_token on ${current}`)
      response = await this.request(form.action, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams([...form.fields]).toString(),
      })
      current = form.action
    }
    fail(`no redirect out of the provider within ${MAX_STEPS} steps`)
  }
}

function unescapeHtml (text) {
  return text.replace(/&quot;/g, '"').replace(/&#39;|&#x27;/g, "'").replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>').replace(/&amp;/g, '&')
}

/** The first form on a page: its absolute action and its named inputs (hidden and visible). */
function parseForm (html, base) {
  const form = /<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i.exec(html)
  if (!form) return null
  const fields = new Map()
  for (const tag of form[2].match(/<input[^>]*>/gi) ?? []) {
    const name = /name="([^"]*)"/i.exec(tag)
    const value = /value="([^"]*)"/i.exec(tag)
    if (name) fields.set(name[1], value ? unescapeHtml(value[1]) : '')
  }
  return { action: new URL(unescapeHtml(form[1]), base).href, fields }
}

async function main () {
  for (const [key, value] of Object.entries(settings)) {
    if (!value && key !== 'postLogoutRedirectUri') fail(`missing ${key}`)
  }
  const issuer = new URL(settings.issuer)
  const options = issuer.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}
  const config = await oidc.discovery(issuer, settings.clientId, undefined,
    oidc.ClientSecretBasic(settings.clientSecret), options)
  const server = config.serverMetadata()
  const result = { issuer: server.issuer }

  const codeVerifier = oidc.randomPKCECodeVerifier()
  const nonce = oidc.randomNonce()
  const state = oidc.randomState()
  const authorizationUrl = oidc.buildAuthorizationUrl(config, {
    redirect_uri: settings.redirectUri,
    scope: 'openid profile email offline_access',
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    nonce,
    state,
    prompt: 'consent',
  })
  const browser = new Browser(issuer.origin)
  const callback = await browser.journey(authorizationUrl.href)
  if (!callback.startsWith(settings.redirectUri)) fail(`redirected to ${callback}`)
  result.pages = browser.pages

  // Validates state, iss (RFC 9207), the code exchange with PKCE, and the ID token
  // (signature via jwks_uri, iss, aud, exp, iat, nonce).
  const tokens = await oidc.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: codeVerifier, expectedNonce: nonce, expectedState: state, idTokenExpected: true,
  })
  const claims = tokens.claims()
  result.token = {
    token_type: tokens.token_type,
    has_refresh_token: Boolean(tokens.refresh_token),
    scope: tokens.scope,
  }
  result.id_token_claims = claims

  // OIDC Core §5.3.2: openid-client checks that the UserInfo sub is the ID token's.
  result.userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub)

  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token)
  result.refresh = {
    new_access_token: refreshed.access_token !== tokens.access_token,
    new_refresh_token: Boolean(refreshed.refresh_token) && refreshed.refresh_token !== tokens.refresh_token,
    id_token_sub: refreshed.claims()?.sub ?? null,
  }

  await oidc.tokenRevocation(config, refreshed.refresh_token, { token_type_hint: 'refresh_token' })
  try {
    await oidc.refreshTokenGrant(config, refreshed.refresh_token)
    result.refresh_after_revocation = 'accepted'
  } catch (error) {
    result.refresh_after_revocation = error.error ?? String(error)
  }

  const logoutState = oidc.randomState()
  const endSession = oidc.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    ...(settings.postLogoutRedirectUri
      ? { post_logout_redirect_uri: settings.postLogoutRedirectUri, state: logoutState }
      : {}),
  })
  result.end_session_url = endSession.href
  if (settings.postLogoutRedirectUri) {
    const back = new URL(await browser.journey(endSession.href))
    result.logout = {
      redirect: `${back.origin}${back.pathname}`,
      state_returned: back.searchParams.get('state') === logoutState,
    }
  }
  process.stdout.write(JSON.stringify(result, null, 2) + '\n')
}

main().catch((error) => {
  process.stderr.write(JSON.stringify({
    error: error.message, code: error.code ?? null, oauth_error: error.error ?? null,
    cause: error.cause ? String(error.cause?.message ?? error.cause) : null,
  }) + '\n')
  process.exit(1)
})
