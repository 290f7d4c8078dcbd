// node oidc-provider (panva/node-oidc-provider 9.x) as a peer for bench/run.py, configured like
// `oidc-provider serve`: 2 worker processes on one port (node's cluster module), JWT access
// tokens signed with the client's algorithm (EdDSA or RS256), a client_credentials client, a
// relying party with code + PKCE whose consent is implied (like our `client create --trusted`),
// userinfo, introspection, discovery and JWKS.
//
//   node bench/node/server.mjs --port 8002 --workers 2 --config /tmp/bench-node.json
//
// --config names a JSON file written by run.py: {"issuer", "clients": {name: [id, secret]},
// "redirect_uri", "resource", "account": {"sub", "email", "name"}}. Keys are generated at
// start (RSA-2048 and Ed25519) by the primary and handed to both workers; nothing is written
// to disk.
//
// Storage: node oidc-provider keeps sessions, grants, codes and opaque tokens in an adapter.
// Its bundled memory adapter lives inside one process, so with two workers a code issued by one
// could not be redeemed at the other. The adapter here (`SharedStore`) keeps the same in-memory
// maps in the cluster's primary process and the workers reach it over the cluster IPC channel,
// much as they would reach Redis. JWT access tokens are not stored at all (node's design: a JWT
// is self-contained), so the client_credentials scenarios never touch the store.
//
// GET /interaction/<uid> completes any interaction at once: login as the configured account
// (run.py calls it once to log in, as it posts our login form once) and, should one be asked,
// a consent covering what was requested. After that a logged-in session's /authorize answers
// with a code directly (loadExistingGrant: the relying parties are first-party).

import cluster from 'node:cluster';
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    workers: { type: 'string', default: '2' },
    config: { type: 'string' },
  },
});
const config = JSON.parse(readFileSync(args.config, 'utf8'));

// ---------------------------------------------------------------------------- primary

function expired(entry, now) {
  return entry.exp !== undefined && entry.exp <= now;
}

function runPrimary() {
  const jwk = (keyPair, alg) => ({
    ...keyPair.privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: crypto.randomUUID(),
  });
  const keys = [
    jwk(crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }), 'RS256'),
    jwk(crypto.generateKeyPairSync('ed25519'), 'EdDSA'),
  ];
  const cookieKeys = [crypto.randomBytes(32).toString('base64url')];

  // model name -> Map(id -> {payload, exp}); uid and grantId indexes for findByUid/revokeByGrantId.
  const models = new Map();
  const byUid = new Map();
  const byGrant = new Map();
  const table = (name) => {
    if (!models.has(name)) models.set(name, new Map());
    return models.get(name);
  };
  const ops = {
    upsert({ model, id, payload, ttl }) {
      table(model).set(id, { payload, exp: ttl ? Date.now() + ttl * 1000 : undefined });
      if (payload.uid) byUid.set(`${model}:${payload.uid}`, id);
      if (payload.grantId) {
        const key = payload.grantId;
        if (!byGrant.has(key)) byGrant.set(key, []);
        byGrant.get(key).push([model, id]);
      }
    },
    find({ model, id }) {
      const entry = table(model).get(id);
      if (!entry) return undefined;
      if (expired(entry, Date.now())) {
        table(model).delete(id);
        return undefined;
      }
      return entry.payload;
    },
    findByUid({ model, uid }) {
      const id = byUid.get(`${model}:${uid}`);
      return id === undefined ? undefined : ops.find({ model, id });
    },
    findByUserCode() {
      return undefined;
    },
    consume({ model, id }) {
      const entry = table(model).get(id);
      if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    },
    destroy({ model, id }) {
      table(model).delete(id);
    },
    revokeByGrantId({ grantId }) {
      for (const [model, id] of byGrant.get(grantId) || []) table(model).delete(id);
      byGrant.delete(grantId);
    },
  };
  // Expired entries (codes, interactions, sessions) are dropped now and then, as Redis would.
  // The indexes forget what is gone, so that the store does not grow with every code issued.
  setInterval(() => {
    const now = Date.now();
    for (const entries of models.values()) {
      for (const [id, entry] of entries) if (expired(entry, now)) entries.delete(id);
    }
    for (const [key, id] of byUid) {
      if (!table(key.slice(0, key.indexOf(':'))).has(id)) byUid.delete(key);
    }
    for (const [grantId, rows] of byGrant) {
      const left = rows.filter(([model, id]) => table(model).has(id));
      if (left.length) byGrant.set(grantId, left);
      else byGrant.delete(grantId);
    }
  }, 10_000).unref();

  const count = Number(args.workers);
  let stopping = false;
  for (let i = 0; i < count; i += 1) {
    const worker = cluster.fork({ BENCH_NODE_KEYS: JSON.stringify({ keys, cookieKeys }) });
    worker.on('message', (msg) => {
      let result;
      let error;
      try {
        result = ops[msg.op](msg);
      } catch (err) {
        error = String(err);
      }
      worker.send({ ref: msg.ref, result, error });
    });
  }
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      console.error(`worker ${worker.process.pid} exited (${signal || code}); stopping`);
      stop();
    }
  });
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 2000).unref();
    if (Object.keys(cluster.workers).length === 0) process.exit(0);
  };
  cluster.on('disconnect', () => {
    if (stopping && Object.keys(cluster.workers).length === 0) process.exit(0);
  });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

// ---------------------------------------------------------------------------- workers

class SharedStore {
  static pending = new Map();

  static next = 0;

  static call(op, fields) {
    SharedStore.next += 1;
    const ref = SharedStore.next;
    return new Promise((resolve, reject) => {
      SharedStore.pending.set(ref, { resolve, reject });
      process.send({ ref, op, ...fields });
    });
  }

  static answer({ ref, result, error }) {
    const waiting = SharedStore.pending.get(ref);
    SharedStore.pending.delete(ref);
    if (error) waiting.reject(new Error(error));
    else waiting.resolve(result);
  }

  constructor(model) {
    this.model = model;
  }

  upsert(id, payload, ttl) { return SharedStore.call('upsert', { model: this.model, id, payload, ttl }); }

  find(id) { return SharedStore.call('find', { model: this.model, id }); }

  findByUid(uid) { return SharedStore.call('findByUid', { model: this.model, uid }); }

  findByUserCode(userCode) { return SharedStore.call('findByUserCode', { model: this.model, userCode }); }

  consume(id) { return SharedStore.call('consume', { model: this.model, id }); }

  destroy(id) { return SharedStore.call('destroy', { model: this.model, id }); }

  revokeByGrantId(grantId) { return SharedStore.call('revokeByGrantId', { grantId }); }
}

async function runWorker() {
  process.on('message', SharedStore.answer);
  const { default: Provider } = await import('oidc-provider');
  const { keys, cookieKeys } = JSON.parse(process.env.BENCH_NODE_KEYS);
  const { clients: ids, redirect_uri: redirectUri, resource, account } = config;
  const scope = 'openid profile email';

  const service = ([clientId, secret], alg) => ({
    client_id: clientId,
    client_secret: secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: alg, // picks the access token's alg below, as in ours
  });
  const rp = ([clientId, secret]) => ({
    client_id: clientId,
    client_secret: secret,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [redirectUri],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  });
  // Clients whose tokens carry no resource get opaque access tokens: node accepts only those at
  // userinfo (an audience-bound JWT is refused there) and can introspect only stored tokens.
  const opaque = new Set([ids.service_opaque[0], ids.rp_opaque[0]]);

  const provider = new Provider(config.issuer, {
    clients: [
      service(ids.service_rs256, 'RS256'),
      service(ids.service_eddsa, 'EdDSA'),
      service(ids.service_opaque, 'RS256'),
      rp(ids.rp),
      rp(ids.rp_opaque),
    ],
    jwks: { keys },
    cookies: { keys: cookieKeys },
    adapter: SharedStore,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
    },
    scopes: ['openid', 'profile', 'email'],
    async findAccount(ctx, sub) {
      if (sub !== account.sub) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub, email: account.email, email_verified: true, name: account.name,
            preferred_username: account.sub,
          };
        },
      };
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // A client introspects its own tokens (as the bench's introspect scenario does).
        async allowedPolicy(ctx, client, token) {
          return token.clientId === client.clientId;
        },
      },
      userinfo: { enabled: true },
      resourceIndicators: {
        enabled: true,
        async defaultResource(ctx, client, oneOf) {
          if (oneOf) return oneOf;
          return opaque.has(client.clientId) ? undefined : resource;
        },
        async useGrantedResource() {
          return true;
        },
        async getResourceServerInfo(ctx, resourceIndicator, client) {
          if (resourceIndicator !== resource) throw new Provider.errors.InvalidTarget();
          return {
            scope: 'api',
            audience: resource,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 3600,
            jwt: { sign: { alg: client.idTokenSignedResponseAlg } },
          };
        },
      },
    },
    pkce: { required: () => true },
    routes: {
      authorization: '/authorize',
      userinfo: '/userinfo',
      introspection: '/introspect',
      jwks: '/jwks.json',
      token: '/token',
    },
    interactions: {
      url(ctx, interaction) {
        return `/interaction/${interaction.uid}`;
      },
    },
    async loadExistingGrant(ctx) {
      const { client, session } = ctx.oidc;
      const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
      if (grantId) {
        const grant = await ctx.oidc.provider.Grant.find(grantId);
        if (grant) return grant;
      }
      // First-party relying party: consent is implied, as for our `client create --trusted`.
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope(scope);
      if (!opaque.has(client.clientId)) grant.addResourceScope(resource, 'api');
      await grant.save();
      return grant;
    },
    ttl: {
      AccessToken: 3600,
      ClientCredentials: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Grant: 14 * 24 * 3600,
      Interaction: 600,
      Session: 14 * 24 * 3600,
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));

  const callback = provider.callback();
  const server = http.createServer(async (req, res) => {
    if (!req.url.startsWith('/interaction/')) {
      callback(req, res);
      return;
    }
    try {
      const details = await provider.interactionDetails(req, res);
      const result = { login: { accountId: account.sub } };
      if (details.prompt.name === 'consent') {
        const grant = details.grantId
          ? await provider.Grant.find(details.grantId)
          : new provider.Grant({ accountId: account.sub, clientId: details.params.client_id });
        grant.addOIDCScope(scope);
        result.consent = { grantId: await grant.save() };
      }
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
    } catch (err) {
      res.statusCode = 400;
      res.end(String(err));
    }
  });
  server.keepAliveTimeout = 5000; // as our KEEPALIVE
  server.listen(Number(args.port), args.host);
  process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 1000).unref();
  });
  process.on('disconnect', () => process.exit(0)); // the primary is gone: do not linger
}

if (cluster.isPrimary) runPrimary();
else runWorker();
