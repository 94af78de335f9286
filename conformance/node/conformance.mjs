// Drives Google's own Node client libraries (google-auth-library and
// @googleapis/people, versions pinned in package-lock.json) against the
// Google emulator, configured through their documented options only:
// OAuth2Client's `endpoints` overrides and the API client's `rootUrl`.
// Nothing here patches or reaches inside a library.
//
// Usage: EMULATOR_URL=http://127.0.0.1:9022 node conformance.mjs
//
// The emulator must know the demo client, have the demo users, and serve
// its key sets with a short max-age (the Go test that runs this uses 3s),
// because the rotation case waits for a new key to start signing.
// It prints one line per case ("ok - ..." or "not ok - ...") and exits 1
// if any failed.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { OAuth2Client } from 'google-auth-library';
import { people } from '@googleapis/people';

const base = (process.env.EMULATOR_URL || process.argv[2] || '').replace(/\/+$/, '');
if (!base) {
  console.error('usage: EMULATOR_URL=http://host:port node conformance.mjs');
  process.exit(2);
}

const clientId = '000000000000-demo.apps.googleusercontent.com';
const clientSecret = 'GOCSPX-demo-client-secret';
const ada = { sub: '107351908233017426134', email: 'ada@example.com', name: 'Ada Lovelace' };
const grace = { sub: '114812093760385312027', email: 'grace@example.com' };

// The documented way to point OAuth2Client somewhere other than Google.
const endpoints = {
  oauth2AuthBaseUrl: `${base}/o/oauth2/v2/auth`,
  oauth2TokenUrl: `${base}/token`,
  oauth2RevokeUrl: `${base}/revoke`,
  tokenInfoUrl: `${base}/tokeninfo`,
  oauth2FederatedSignonPemCertsUrl: `${base}/oauth2/v1/certs`,
  oauth2FederatedSignonJwkCertsUrl: `${base}/oauth2/v3/certs`,
};

function newClient(opts = {}) {
  return new OAuth2Client({
    clientId,
    clientSecret,
    redirectUri: 'postmessage',
    endpoints,
    ...opts,
  });
}

// The emulator's control API (not a Google API): users, codes, keys.
async function control(method, path, body) {
  const res = await fetch(`${base}/emulator/v1/${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await res.json();
  if (!res.ok) throw new Error(`control ${method} ${path}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}

const mintCode = (user, extra = {}) =>
  control('POST', 'codes', { client_id: clientId, sub: user.sub, access_type: 'offline', prompt: 'consent', ...extra }).then(
    (r) => r.code,
  );
const mintIdToken = (user) => control('POST', 'id-tokens', { client_id: clientId, sub: user.sub }).then((r) => r.credential);
const certFetches = async () => (await control('GET', 'stats')).endpoints.certs?.requests ?? 0;
const kidOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString()).kid;

// rejects awaits p and checks the library's error: a GaxiosError with
// Google's status and OAuth or API error body.
async function rejects(p, { status, error, description, message }) {
  let err;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'the call succeeded');
  const got = err.response ? `${err.response.status} ${JSON.stringify(err.response.data)}` : String(err);
  assert.equal(err.response?.status, status, got);
  if (error !== undefined) assert.equal(err.response.data.error, error, got);
  if (description !== undefined) assert.equal(err.response.data.error_description, description, got);
  if (message !== undefined) assert.match(err.message, message, got);
  return err;
}

const cases = [];
const test = (name, fn) => cases.push({ name, fn });

// Shared across cases, in order: the tokens from the first exchange.
let tokens;

test('getToken exchanges a popup code with redirect_uri=postmessage', async () => {
  const client = newClient();
  const res = await client.getToken(await mintCode(ada, { nonce: 'n-1' }));
  tokens = res.tokens;
  assert.match(tokens.access_token, /^ya29\./);
  assert.match(tokens.refresh_token, /^1\/\//);
  assert.equal(tokens.token_type, 'Bearer');
  assert.ok(tokens.id_token, 'no id_token');
  assert.ok(tokens.expiry_date > Date.now() + 50 * 60 * 1000, `expiry_date ${tokens.expiry_date}`);
  assert.deepEqual(tokens.scope.split(' ').sort(), [
    'https://www.googleapis.com/auth/userinfo.email',
    'https://www.googleapis.com/auth/userinfo.profile',
    'openid',
  ]);
});

test('verifyIdToken with the library defaults (PEM certificates, Google issuers)', async () => {
  const client = newClient();
  const ticket = await client.verifyIdToken({ idToken: tokens.id_token, audience: clientId });
  const p = ticket.getPayload();
  assert.equal(p.iss, 'https://accounts.google.com');
  assert.equal(p.sub, ada.sub);
  assert.equal(p.aud, clientId);
  assert.equal(p.azp, clientId);
  assert.equal(p.email, ada.email);
  assert.equal(p.email_verified, true);
  assert.equal(p.nonce, 'n-1');
  assert.equal(ticket.getUserId(), ada.sub);
  await assert.rejects(client.verifyIdToken({ idToken: tokens.id_token, audience: 'other.apps.googleusercontent.com' }), /audience/i);
  const [h, b, s] = tokens.id_token.split('.');
  const forged = `${h}.${Buffer.from(JSON.stringify({ ...p, sub: grace.sub })).toString('base64url')}.${s}`;
  await assert.rejects(client.verifyIdToken({ idToken: forged, audience: clientId }), /signature/i);
});

test('an expired access token is refreshed through the refresh token', async () => {
  const client = newClient();
  client.setCredentials({ ...tokens, expiry_date: Date.now() - 1000 });
  const fresh = [];
  client.on('tokens', (t) => fresh.push(t));
  const { token } = await client.getAccessToken();
  assert.match(token, /^ya29\./);
  assert.notEqual(token, tokens.access_token);
  assert.equal(fresh.length, 1);
  assert.ok(fresh[0].id_token, 'the refresh answer has no id_token');
  // Google sends no new refresh token on refresh; the library keeps the old.
  assert.equal(client.credentials.refresh_token, tokens.refresh_token);
});

test('getTokenInfo (POST with the token as Bearer)', async () => {
  const client = newClient();
  const info = await client.getTokenInfo(tokens.access_token);
  assert.equal(info.sub, ada.sub);
  assert.equal(info.aud, clientId);
  assert.equal(info.email, ada.email);
  assert.equal(info.access_type, 'offline');
  assert.ok(info.scopes.includes('openid'), `scopes ${info.scopes}`);
  assert.ok(info.expiry_date > Date.now(), `expiry_date ${info.expiry_date}`);
  await rejects(client.getTokenInfo('ya29.not-a-token'), { status: 400, error: 'invalid_token' });
});

test('people.get with personFields, through rootUrl', async () => {
  const client = newClient();
  client.setCredentials(tokens);
  const api = people({ version: 'v1', auth: client, rootUrl: `${base}/` });
  const { data } = await api.people.get({ resourceName: 'people/me', personFields: 'names,emailAddresses,photos' });
  assert.equal(data.resourceName, `people/${ada.sub}`);
  assert.equal(data.names[0].displayName, ada.name);
  assert.equal(data.emailAddresses[0].value, ada.email);
  assert.match(data.photos[0].url, /^http/);
  assert.ok(data.etag);
});

test('people.get without personFields is Google\'s 400', async () => {
  const client = newClient();
  client.setCredentials(tokens);
  const api = people({ version: 'v1', auth: client, rootUrl: `${base}/` });
  const err = await rejects(api.people.get({ resourceName: 'people/me' }), {
    status: 400,
    message: /personFields mask is required/,
  });
  assert.equal(err.response.data.error.status, 'INVALID_ARGUMENT');
});

const contacts = 'https://www.googleapis.com/auth/contacts.readonly';
const signIn = ['https://www.googleapis.com/auth/userinfo.email', 'https://www.googleapis.com/auth/userinfo.profile', 'openid'];

// Granular consent: Grace is asked for contacts.readonly and unticks it.
// The library reads what was granted from the token response's scope, as
// the app does (split on spaces, Google's long forms), and from tokeninfo;
// the People API refuses the call that needs the missing scope with
// Google's 403. Asking again for just contacts, with
// include_granted_scopes, gives tokens for the union.
test('a partial grant: scope lists only what was granted; connections needs contacts.readonly', async () => {
  const client = newClient();
  const partial = await client.getToken(
    await mintCode(grace, { scope: `openid email profile ${contacts}`, granted_scope: 'openid' }),
  );
  assert.deepEqual(partial.tokens.scope.split(' ').sort(), signIn);
  const info = await client.getTokenInfo(partial.tokens.access_token);
  assert.deepEqual([...info.scopes].sort(), signIn);
  client.setCredentials(partial.tokens);
  const api = people({ version: 'v1', auth: client, rootUrl: `${base}/` });
  const err = await rejects(api.people.connections.list({ resourceName: 'people/me', personFields: 'names' }), {
    status: 403,
    message: /insufficient authentication scopes/,
  });
  assert.equal(err.response.data.error.status, 'PERMISSION_DENIED');
  assert.equal(err.response.data.error.details[0].reason, 'ACCESS_TOKEN_SCOPE_INSUFFICIENT');

  const more = newClient();
  const union = await more.getToken(
    await mintCode(grace, { scope: contacts, include_granted_scopes: true, prompt: '' }),
  );
  assert.deepEqual(union.tokens.scope.split(' ').sort(), [contacts, ...signIn].sort());
  assert.ok(union.tokens.refresh_token, 'the incremental grant gave no refresh token');
  more.setCredentials({ ...union.tokens, expiry_date: Date.now() - 1000 });
  const refreshed = [];
  more.on('tokens', (t) => refreshed.push(t));
  await more.getAccessToken();
  assert.deepEqual(refreshed[0].scope.split(' ').sort(), [contacts, ...signIn].sort());
  const list = people({ version: 'v1', auth: more, rootUrl: `${base}/` });
  let n = 0;
  let pageToken;
  do {
    const { data } = await list.people.connections.list({ resourceName: 'people/me', personFields: 'names', pageSize: 2, pageToken });
    n += (data.connections || []).length;
    pageToken = data.nextPageToken;
  } while (pageToken);
  assert.ok(n >= 3, `${n} contacts`);
});

test('a wrong client secret is 401 invalid_client', async () => {
  const client = newClient({ clientSecret: 'GOCSPX-wrong' });
  await rejects(client.getToken(await mintCode(grace)), { status: 401, error: 'invalid_client' });
});

test('a reused code is 400 invalid_grant "Code was already redeemed."', async () => {
  const client = newClient();
  const code = await mintCode(grace);
  await client.getToken(code);
  await rejects(client.getToken(code), { status: 400, error: 'invalid_grant', description: 'Code was already redeemed.' });
});

test('a redirect URI other than the code\'s is 400 redirect_uri_mismatch', async () => {
  const client = newClient({ redirectUri: 'http://localhost:9021/oauth2callback' });
  await rejects(client.getToken(await mintCode(grace)), { status: 400, error: 'redirect_uri_mismatch' });
});

test('revokeToken ends the grant: the refresh token then gets invalid_grant', async () => {
  const client = newClient();
  const res = await client.revokeToken(tokens.refresh_token);
  assert.equal(res.status, 200);
  const again = newClient();
  again.setCredentials({ refresh_token: tokens.refresh_token });
  await rejects(again.refreshAccessToken(), {
    status: 400,
    error: 'invalid_grant',
    description: 'Token has been expired or revoked.',
  });
  await rejects(again.revokeToken(tokens.refresh_token), { status: 400, error: 'invalid_token' });
});

test('verifyIdToken keeps working across a key rotation', async () => {
  const client = newClient(); // one verifier, with the library's cache
  const before = await mintIdToken(ada);
  await client.verifyIdToken({ idToken: before, audience: clientId });

  // Google's rotation: the new key is published now and signs one
  // max-age later, so a verifier honouring max-age has it by then.
  const rot = await control('POST', 'keys/rotate', {});
  assert.equal(rot.signing, false);
  assert.equal(rot.in_key_set, true);
  const stillOld = await mintIdToken(ada);
  assert.notEqual(kidOf(stillOld), rot.kid, 'the new key signed as soon as it was published');
  await client.verifyIdToken({ idToken: stillOld, audience: clientId });

  const wait = Date.parse(rot.signs_from) - Date.now() + 100;
  assert.ok(wait < 30_000, `the new key signs only in ${wait} ms: run the emulator with a short KeyMaxAge`);
  await sleep(Math.max(wait, 0));
  const signedByNew = await mintIdToken(ada);
  assert.equal(kidOf(signedByNew), rot.kid);
  const ticket = await client.verifyIdToken({ idToken: signedByNew, audience: clientId });
  assert.equal(ticket.getPayload().sub, ada.sub);
  await client.verifyIdToken({ idToken: before, audience: clientId }); // the old key is still published

  // An immediate rotation (the emulator's test hook; Google never does
  // this) meets the library's cache: the kid is unknown until max-age.
  const fetches = await certFetches();
  const now = await control('POST', 'keys/rotate', { immediate: true });
  const surprise = await mintIdToken(ada);
  assert.equal(kidOf(surprise), now.kid);
  await assert.rejects(client.verifyIdToken({ idToken: surprise, audience: clientId }), /No pem found/);
  assert.equal(await certFetches(), fetches, 'the library refetched keys within max-age');
  await newClient().verifyIdToken({ idToken: surprise, audience: clientId });
});

let failed = 0;
for (const { name, fn } of cases) {
  try {
    await fn();
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n  ${String(e?.stack || e).replace(/\n/g, '\n  ')}`);
  }
}
console.log(`${cases.length - failed}/${cases.length} passed`);
process.exit(failed ? 1 : 0);
