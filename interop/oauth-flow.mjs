#!/usr/bin/env node
// oauth-flow.mjs — run the full MCP OAuth flow of the official MCP TypeScript
// SDK against a running `butler demo`, and print what happened as JSON.
//
//   node interop/oauth-flow.mjs http://127.0.0.1:PORT/mcp [alice|bob|carol|admin]
//
// Only the SDK's own client does the protocol work: Client,
// StreamableHTTPClientTransport and its `auth` module, driven by the
// OAuthClientProvider implemented below. Nothing here builds an OAuth request
// itself. What happens, in order:
//
//   1. connect() without a token: Butler answers the initialize POST with 401
//      and `WWW-Authenticate: Bearer resource_metadata="…", scope="…"`;
//   2. the SDK fetches the RFC 9728 protected-resource metadata named there;
//   3. it fetches the authorization server's RFC 8414 / OIDC metadata;
//   4. it registers a client dynamically (RFC 7591) — saveClientInformation();
//   5. it builds the authorization URL (PKCE S256, RFC 8707 `resource`, scope,
//      state) and calls redirectToAuthorization(url), and connect() rejects
//      with UnauthorizedError;
//   6. redirectToAuthorization plays the browser: it loads the development
//      IdP's login page, picks the user by submitting the page's form exactly
//      as a browser would (hidden fields + the clicked button, the IdP's
//      cookie, Origin), and follows the redirects until the browser lands on
//      our redirect URI — a loopback HTTP server this script owns, which
//      receives `code` and `state` as a real native client would;
//   7. transport.finishAuth(code) makes the SDK exchange the code (with the
//      PKCE verifier and `resource`) at the token endpoint — after
//      discovering both metadata documents again, as this provider keeps no
//      discovery cache (discoveryState is optional);
//   8. a new connection with the token: initialize, tools/list,
//      tools/call whoami, tools/call get_job {job: "frontend/web-app"}, and
//      get_job on a job that does not exist (the `not_found` tool error).
//
// Then, to check that the token really carries the user, a second user (bob,
// who may only read) signs in with the same registered client and calls
// trigger_job on frontend/web-app: Jenkins refuses, and the tool result must
// be the `forbidden` tool error.
//
// The JSON summary goes to stdout (also when a check failed); progress and
// problems go to stderr. Exit status: 0 when everything above happened as
// expected, 1 otherwise (each problem named on stderr and in the summary's
// "problems"), 2 on bad usage. Every request goes to the loopback URLs Butler
// and its IdP advertise; the script refuses to send anything anywhere else.

import http from 'node:http';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SDK_VERSION = JSON.parse(
  readFileSync(join(HERE, 'node_modules/@modelcontextprotocol/sdk/package.json'), 'utf8'),
).version;

const DEADLINE_MS = 45_000; // the whole run; the e2e test allows ~60 s
const SECOND_USER = 'bob';

function log(...args) {
  console.error('[oauth-flow]', ...args);
}

function fail(message) {
  console.error(`oauth-flow: FAIL: ${message}`);
  process.exit(1);
}

// Only loopback is a valid target: the demo listens on 127.0.0.1 and so do
// its IdP and our redirect URI. Anything else is a bug (or a hostile
// redirect) and is refused before a byte is sent.
function assertLoopback(u) {
  const host = new URL(u).hostname;
  if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(host)) {
    throw new Error(`refusing to send a request to non-loopback URL ${u}`);
  }
}

// ---------------------------------------------------------------------------
// Recording: every HTTP request the SDK makes goes through this fetch (the
// transport's `fetch` option, which the SDK also uses for discovery,
// registration and the token request). It observes; it never changes a
// request or a response.

// The OAuth/MCP steps of the user signing in now, in the order they
// happened. main() points it at a fresh array for each user.
let steps = [];

function decodeJwtPayload(token) {
  const parts = String(token).split('.');
  if (parts.length !== 3) throw new Error('the access token is not a JWT');
  return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
}

function classify(method, url, body, headers) {
  const u = new URL(url);
  const p = u.pathname;
  if (p.startsWith('/.well-known/oauth-protected-resource')) return { step: 'resource_metadata' };
  if (p.startsWith('/.well-known/oauth-authorization-server') || p.startsWith('/.well-known/openid-configuration')) {
    return { step: 'authorization_server_metadata' };
  }
  if (method === 'POST' && p === '/register') return { step: 'registration' };
  if (method === 'POST' && body instanceof URLSearchParams && body.get('grant_type')) {
    return {
      step: 'token',
      grant_type: body.get('grant_type'),
      resource: body.get('resource'),
      has_code_verifier: !!body.get('code_verifier'),
      redirect_uri: body.get('redirect_uri'),
    };
  }
  if (p === new URL(mcpURL).pathname) {
    const authorized = !!headers.get('authorization');
    let rpc = {};
    if (typeof body === 'string') {
      try {
        const m = JSON.parse(body);
        rpc = { rpc_method: m.method, ...(m.method === 'tools/call' ? { tool: m.params?.name } : {}) };
      } catch {
        /* not JSON: leave it unnamed */
      }
    }
    return { step: 'mcp', authorized, ...rpc };
  }
  return { step: 'other' };
}

async function recordingFetch(input, init = {}) {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  const method = (init.method || 'GET').toUpperCase();
  assertLoopback(url);
  const headers = new Headers(init.headers || {});
  const entry = { ...classify(method, url, init.body, headers), method, url };
  const res = await fetch(input, init);
  entry.status = res.status;
  if (res.status === 401 || res.status === 403) {
    entry.www_authenticate = res.headers.get('www-authenticate');
    if (entry.step === 'mcp') entry.step = res.status === 401 ? 'unauthorized' : 'forbidden';
  }
  // The MCP GET stream and the notifications are noise for the OAuth story;
  // keep them, but mark them so readers can skip them.
  steps.push(entry);
  return res;
}

// ---------------------------------------------------------------------------
// The browser: a cookie jar and redirect-following, enough to use the
// development IdP's login page the way a real browser does. It is used only
// inside redirectToAuthorization.

class CookieJar {
  constructor() {
    this.cookies = []; // {name, value, host, path}
  }
  store(url, response) {
    const u = new URL(url);
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = u.pathname.replace(/\/[^/]*$/, '') || '/';
      for (const a of attrs) {
        const [k, v] = a.split('=');
        if (k.trim().toLowerCase() === 'path' && v) path = v.trim();
      }
      this.cookies = this.cookies.filter((c) => !(c.name === name && c.host === u.host && c.path === path));
      this.cookies.push({ name, value, host: u.host, path });
    }
  }
  header(url) {
    const u = new URL(url);
    const matching = this.cookies.filter(
      (c) => c.host === u.host && (u.pathname === c.path || u.pathname.startsWith(c.path.endsWith('/') ? c.path : c.path + '/')),
    );
    return matching.map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

function htmlUnescape(s) {
  return s
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#([0-9]+);/g, (_, d) => String.fromCodePoint(parseInt(d, 10)))
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attr(tag, name) {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*"([^"]*)"`, 'i')) || tag.match(new RegExp(`\\s${name}\\s*=\\s*'([^']*)'`, 'i'));
  return m ? htmlUnescape(m[1]) : undefined;
}

// parseLoginForm finds the page's form, its hidden fields, and the submit
// button that signs in as `user` — what a person clicking "Sign in as user"
// would send.
function parseLoginForm(html, user) {
  const form = html.match(/<form\b[^>]*>([\s\S]*?)<\/form>/i);
  if (!form) throw new Error('the login page has no <form>');
  const formTag = form[0].match(/<form\b[^>]*>/i)[0];
  const method = (attr(formTag, 'method') || 'get').toUpperCase();
  const action = attr(formTag, 'action') || '';
  const fields = new URLSearchParams();
  for (const input of form[1].match(/<input\b[^>]*>/gi) || []) {
    const type = (attr(input, 'type') || 'text').toLowerCase();
    const name = attr(input, 'name');
    if (name && type === 'hidden') fields.append(name, attr(input, 'value') ?? '');
  }
  const buttons = (form[1].match(/<button\b[^>]*>/gi) || []).map((b) => ({
    type: (attr(b, 'type') || 'submit').toLowerCase(),
    name: attr(b, 'name'),
    value: attr(b, 'value'),
  }));
  const button = buttons.find((b) => b.type === 'submit' && b.name === 'user' && b.value === user);
  if (!button) {
    const offered = buttons.filter((b) => b.name === 'user').map((b) => b.value);
    throw new Error(`the login page offers no "Sign in as ${user}" button (it offers: ${offered.join(', ') || 'none'})`);
  }
  fields.append(button.name, button.value);
  return { method, action, fields };
}

// browse plays the user agent from the authorization URL to the redirect URI.
// It returns the trail of pages it visited.
async function browse(authorizationURL, user, redirectURI) {
  const jar = new CookieJar();
  const trail = [];
  let url = authorizationURL.href;
  let init = { method: 'GET' };
  for (let hops = 0; hops < 20; hops++) {
    assertLoopback(url);
    const headers = new Headers({ 'User-Agent': 'butler-interop-browser/1 (oauth-flow.mjs)', Accept: 'text/html,*/*' });
    const cookie = jar.header(url);
    if (cookie) headers.set('Cookie', cookie);
    if (init.body) {
      headers.set('Content-Type', 'application/x-www-form-urlencoded');
      headers.set('Origin', new URL(url).origin); // browsers send Origin on a form POST
    }
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    jar.store(url, res);
    const location = res.headers.get('location');
    trail.push({ method: init.method, url, status: res.status, ...(location ? { location } : {}), sent_cookie: !!cookie });
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      const next = new URL(location, url).href;
      // 307/308 keep the method and body; 301/302/303 turn into GET, as in a browser.
      if (![307, 308].includes(res.status)) init = { method: 'GET' };
      url = next;
      if (next.startsWith(redirectURI)) {
        // The browser arrives at the client's redirect URI: load it, as a
        // browser would; our loopback server there captures code and state.
        const done = await fetch(next, { redirect: 'manual' });
        trail.push({ method: 'GET', url: next, status: done.status, step: 'redirect_uri' });
        await done.body?.cancel();
        return trail;
      }
      continue;
    }
    const body = await res.text();
    if (res.status !== 200) throw new Error(`the browser got ${res.status} at ${url}: ${body.slice(0, 300)}`);
    if (!/text\/html/.test(res.headers.get('content-type') || '')) throw new Error(`expected an HTML page at ${url}`);
    // The login page: choose the user.
    const form = parseLoginForm(body, user);
    trail[trail.length - 1].step = 'login_page';
    url = new URL(form.action, url).href;
    init = form.method === 'POST' ? { method: 'POST', body: form.fields.toString() } : { method: 'GET' };
    if (form.method !== 'POST') url += (url.includes('?') ? '&' : '?') + form.fields.toString();
    trail.push({ step: 'login_submit', fields: [...form.fields.keys()], user });
  }
  throw new Error('too many redirects in the browser');
}

// ---------------------------------------------------------------------------
// The redirect URI: a loopback HTTP server, like a desktop MCP client's.

async function startRedirectServer() {
  let resolveCode;
  const codes = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://127.0.0.1');
    if (u.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    const item = {
      code: u.searchParams.get('code'),
      state: u.searchParams.get('state'),
      error: u.searchParams.get('error'),
      error_description: u.searchParams.get('error_description'),
    };
    codes.push(item);
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end('<p>Signed in. You may close this window.</p>');
    resolveCode?.(item);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/callback`;
  return {
    url,
    // next returns the next code delivered to the redirect URI.
    next() {
      if (codes.length) return Promise.resolve(codes.shift());
      return new Promise((resolve) => {
        resolveCode = (item) => {
          codes.splice(codes.indexOf(item), 1);
          resolveCode = undefined;
          resolve(item);
        };
      });
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

// ---------------------------------------------------------------------------
// The OAuthClientProvider: in-memory storage for one "session" of the client
// application, and a redirectToAuthorization that drives the browser above.

class ScriptedProvider {
  constructor({ redirectURL, user, sharedClient }) {
    this._redirectURL = redirectURL;
    this.user = user;
    this._client = sharedClient; // {info} shared between users: one registered application
    this._tokens = undefined;
    this._verifier = undefined;
    this._state = undefined;
    this.authorizations = []; // what redirectToAuthorization saw
  }
  get redirectUrl() {
    return this._redirectURL;
  }
  get clientMetadata() {
    return {
      client_name: 'Butler interop (MCP TypeScript SDK)',
      redirect_uris: [this._redirectURL],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    this._state = crypto.randomUUID();
    return this._state;
  }
  clientInformation() {
    return this._client.info;
  }
  saveClientInformation(info) {
    this._client.info = info;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this._tokens = tokens;
  }
  saveCodeVerifier(v) {
    this._verifier = v;
  }
  codeVerifier() {
    if (!this._verifier) throw new Error('no PKCE code verifier saved');
    return this._verifier;
  }
  async redirectToAuthorization(authorizationURL) {
    const q = authorizationURL.searchParams;
    const entry = {
      step: 'authorization',
      url: authorizationURL.href,
      response_type: q.get('response_type'),
      client_id: q.get('client_id'),
      redirect_uri: q.get('redirect_uri'),
      code_challenge_method: q.get('code_challenge_method'),
      has_code_challenge: !!q.get('code_challenge'),
      resource: q.get('resource'),
      scope: q.get('scope'),
      has_state: !!q.get('state'),
      user: this.user,
    };
    steps.push(entry);
    this.authorizations.push(entry);
    log(`browser: signing in as ${this.user} at ${authorizationURL.origin}`);
    entry.browser = await browse(authorizationURL, this.user, this._redirectURL);
  }
  expectedState() {
    return this._state;
  }
}

// ---------------------------------------------------------------------------

function toolText(result) {
  return (result.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}

// callForError calls a tool expected to fail with a Butler tool error and
// reports what the SDK's Client.callTool gave the application. If callTool
// itself throws — e.g. because the result's structuredContent does not match
// the tool's outputSchema, which SDK 1.x validates even when isError is true
// (modelcontextprotocol/typescript-sdk#1943) — that is an interop finding:
// the error is reported, with what Butler actually sent, read again through
// the SDK's lower-level request() (same protocol, no output validation).
async function callForError(client, name, args) {
  const describe = (r) => ({
    isError: !!r.isError,
    code: r.structuredContent?.error?.code,
    status: r.structuredContent?.error?.status,
    required_permission: r.structuredContent?.error?.required_permission,
    text: toolText(r),
  });
  try {
    return describe(await client.callTool({ name, arguments: args }));
  } catch (err) {
    const raw = await client.request({ method: 'tools/call', params: { name, arguments: args } }, CallToolResultSchema);
    return { sdk_error: String(err?.message || err), raw: { ...describe(raw), structuredContent: raw.structuredContent } };
  }
}

// signIn runs steps 1–7 for one user and returns the provider holding the token.
async function signIn(user, redirect, sharedClient) {
  const provider = new ScriptedProvider({ redirectURL: redirect.url, user, sharedClient });
  const transport = new StreamableHTTPClientTransport(new URL(mcpURL), { authProvider: provider, fetch: recordingFetch });
  const client = new Client({ name: 'butler-interop-oauth-flow', version: '1.0.0' });
  try {
    await client.connect(transport);
    throw new Error(`connecting without a token succeeded for ${user}; Butler should have answered 401`);
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
  }
  const got = await redirect.next();
  if (got.error) throw new Error(`the IdP redirected with error=${got.error}: ${got.error_description}`);
  if (!got.code) throw new Error('the redirect URI received no code');
  if (got.state !== provider.expectedState()) throw new Error(`state mismatch: sent ${provider.expectedState()}, got ${got.state}`);
  steps.push({ step: 'redirect_received', url: redirect.url, has_code: true, state_matches: true, user });
  await transport.finishAuth(got.code); // step 7: the token request
  await transport.close();
  if (!provider.tokens()?.access_token) throw new Error('finishAuth stored no access token');
  return provider;
}

// connectWith opens an authorized MCP connection with the provider's token.
async function connectWith(provider) {
  const transport = new StreamableHTTPClientTransport(new URL(mcpURL), { authProvider: provider, fetch: recordingFetch });
  const client = new Client({ name: 'butler-interop-oauth-flow', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

// ---------------------------------------------------------------------------

const [mcpURL, user = 'alice'] = process.argv.slice(2);
if (!mcpURL) {
  console.error('usage: node oauth-flow.mjs MCP_URL [alice|bob|carol|admin]');
  process.exit(2);
}

async function main() {
  assertLoopback(mcpURL);
  const started = Date.now();
  const redirect = await startRedirectServer();
  const sharedClient = { info: undefined };
  const summary = { sdk: { package: '@modelcontextprotocol/sdk', version: SDK_VERSION }, node: process.version, mcp_url: mcpURL, user };
  try {
    // --- the user given on the command line --------------------------------
    summary.steps = steps = [];
    const provider = await signIn(user, redirect, sharedClient);
    const token = provider.tokens();
    const claims = decodeJwtPayload(token.access_token);
    summary.token = {
      token_type: token.token_type,
      aud: claims.aud,
      iss: claims.iss,
      sub: claims.sub,
      scope: claims.scope,
      client_id: claims.client_id,
      expires_in: token.expires_in,
      has_refresh_token: !!token.refresh_token,
    };
    summary.client_id = sharedClient.info?.client_id;

    const client = await connectWith(provider);
    summary.server = client.getServerVersion();
    summary.protocol_version = client.transport?.protocolVersion;
    const tools = await client.listTools();
    summary.tools_count = tools.tools.length;
    summary.tools = tools.tools.map((t) => t.name);

    const who = await client.callTool({ name: 'whoami', arguments: {} });
    if (who.isError) throw new Error(`whoami failed: ${toolText(who)}`);
    summary.whoami = who.structuredContent ?? JSON.parse(toolText(who));

    const job = await client.callTool({ name: 'get_job', arguments: { job: 'frontend/web-app' } });
    if (job.isError) throw new Error(`get_job frontend/web-app failed: ${toolText(job)}`);
    const j = job.structuredContent ?? JSON.parse(toolText(job));
    summary.get_job = { full_name: j.full_name, buildable: j.buildable, keys: Object.keys(j).sort() };
    // A tool error for the same user: a job that does not exist.
    summary.get_job_missing = await callForError(client, 'get_job', { job: 'frontend/no-such-job' });
    await client.close();

    // --- a second user, who may not build -----------------------------------
    // (Skipped when the main user already is bob.)
    if (user !== SECOND_USER) {
      const bobSteps = (steps = []);
      const bobProvider = await signIn(SECOND_USER, redirect, sharedClient);
      const bobClaims = decodeJwtPayload(bobProvider.tokens().access_token);
      const bobClient = await connectWith(bobProvider);
      await bobClient.listTools(); // as a real client does; caches the output schemas the SDK validates against
      const bobWho = await bobClient.callTool({ name: 'whoami', arguments: {} });
      // Bob may not build: a failing call, and nothing is queued, so the
      // diagnostic re-send in callForError cannot queue a second build.
      const trigger = await callForError(bobClient, 'trigger_job', { job: 'frontend/web-app' });
      summary.second_user = {
        user: SECOND_USER,
        token_sub: bobClaims.sub,
        token_aud: bobClaims.aud,
        whoami_user: bobWho.structuredContent?.user,
        trigger_job: trigger,
        steps: bobSteps,
      };
      await bobClient.close();
    }
  } finally {
    await redirect.close();
  }
  // Keep the story readable: drop the MCP GET streams (not part of the flow).
  const tidy = (list) => list.filter((s) => !(s.step === 'mcp' && s.method !== 'POST') && s.step !== 'other');
  const order = (list) => list.map((s) => (s.step === 'mcp' ? `mcp:${s.rpc_method || ''}${s.tool ? ':' + s.tool : ''}` : s.step));
  const mine = summary.steps;
  delete summary.steps; // re-added last, so the JSON reads results first, then the story
  summary.steps = tidy(mine);
  summary.step_order = order(summary.steps);
  if (summary.second_user) {
    summary.second_user.steps = tidy(summary.second_user.steps);
    summary.second_user.step_order = order(summary.second_user.steps);
  }
  summary.elapsed_ms = Date.now() - started;
  summary.problems = problems(summary);
  return summary;
}

// problems lists what did not happen as expected (empty when all is well).
function problems(s) {
  const out = [];
  const audHas = (aud) => (Array.isArray(aud) ? aud.includes(mcpURL) : aud === mcpURL);
  const order = ['unauthorized', 'resource_metadata', 'authorization_server_metadata', 'registration', 'authorization', 'redirect_received', 'token'];
  let i = 0;
  for (const want of order) {
    while (i < s.step_order.length && s.step_order[i] !== want) i++;
    if (i++ >= s.step_order.length) out.push(`OAuth step ${want} missing or out of order: ${s.step_order.join(' → ')}`);
  }
  if (!audHas(s.token.aud)) out.push(`token aud ${JSON.stringify(s.token.aud)} is not ${mcpURL}`);
  if (s.whoami?.user !== user) out.push(`whoami.user is ${s.whoami?.user}, want ${user}`);
  const toolError = (label, e, code) => {
    if (e.sdk_error) out.push(`${label}: Client.callTool threw instead of returning the ${code} tool error: ${e.sdk_error}`);
    else if (!e.isError || e.code !== code) out.push(`${label}: isError=${e.isError} code=${e.code}, want ${code}`);
  };
  toolError('get_job frontend/no-such-job', s.get_job_missing, 'not_found');
  if (s.second_user) {
    if (s.second_user.whoami_user !== SECOND_USER) out.push(`second user's whoami.user is ${s.second_user.whoami_user}`);
    toolError(`${SECOND_USER}'s trigger_job frontend/web-app`, s.second_user.trigger_job, 'forbidden');
  }
  return out;
}

const watchdog = setTimeout(() => fail(`did not finish within ${DEADLINE_MS / 1000} s`), DEADLINE_MS);
main()
  .then((summary) => {
    clearTimeout(watchdog);
    process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
    for (const p of summary.problems) console.error(`oauth-flow: PROBLEM: ${p}`);
    process.exit(summary.problems.length ? 1 : 0);
  })
  .catch((err) => {
    clearTimeout(watchdog);
    fail(err?.stack || String(err));
  });
