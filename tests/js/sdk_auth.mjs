// Drive the official commerce JS SDK (@moltin/sdk or @elasticpath/js-sdk) against a Keyhouse
// server and report, as one JSON document on stdout, what its authentication logic did.
//
//   KEYHOUSE_URL=http://127.0.0.1:8123 SDK=@moltin/sdk CLIENT_ID=abc CLIENT_SECRET= TTL_SECONDS=2 \
//     node tests/js/sdk_auth.mjs
//
// Every HTTP request comes from the SDK itself; the script only wraps the fetch function it
// hands to the SDK (config option `custom_fetch`) to count and record those requests.
// Optional: SDK_STORAGE=memory (default, the SDK's MemoryStorageFactory) or `local` (the SDK's
// default Node storage, node-localstorage in ./localStorage, run inside a fresh temp dir).
// Exit 0 with the JSON report; non-zero with a message on stderr if the SDK threw unexpectedly.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, fail, sdkName as chosenSdk } from './script.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function main() {
  const baseUrl = process.env.KEYHOUSE_URL;
  const sdkName = chosenSdk('@moltin/sdk');
  const clientId = process.env.CLIENT_ID;
  const clientSecret = process.env.CLIENT_SECRET || '';
  const ttl = Number(process.env.TTL_SECONDS || '2');
  const storageMode = process.env.SDK_STORAGE || 'memory';
  if (!baseUrl) fail('KEYHOUSE_URL is required');
  if (!clientId) fail('CLIENT_ID is required');
  if (!(ttl > 0)) fail(`TTL_SECONDS must be a positive number, got ${process.env.TTL_SECONDS}`);

  const url = new URL(baseUrl);
  const protocol = url.protocol.replace(/:$/, ''); // 'http'
  const host = url.host + url.pathname.replace(/\/+$/, ''); // '127.0.0.1:8123' (SDK builds `${protocol}://${host}/...`)

  const sdk = await import(sdkName);
  const pkg = JSON.parse(
    fs.readFileSync(new URL(`./node_modules/${sdkName}/package.json`, import.meta.url), 'utf8'),
  );

  // Record every request the SDK makes through the fetch it was given.
  const requests = [];
  const tokenRequests = () => requests.filter((r) => r.is_token_request);
  const customFetch = async (input, init = {}) => {
    const reqUrl = String(input);
    const entry = {
      method: (init.method || 'GET').toUpperCase(),
      url: reqUrl,
      path: new URL(reqUrl).pathname,
      headers: { ...(init.headers || {}) },
      body: typeof init.body === 'string' ? init.body : init.body == null ? null : String(init.body),
      is_token_request: /\/oauth\/(access_token|token)$/.test(new URL(reqUrl).pathname),
      at_ms: Date.now(),
    };
    requests.push(entry);
    const res = await globalThis.fetch(input, init);
    entry.status = res.status;
    return res;
  };

  let tmpDir = null;
  let storage;
  if (storageMode === 'memory') {
    storage = new sdk.MemoryStorageFactory();
  } else if (storageMode === 'local') {
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyhouse-sdk-'));
    process.chdir(tmpDir); // LocalStorageFactory writes ./localStorage relative to cwd
    storage = undefined; // let the SDK pick its default (LocalStorageFactory in Node)
  } else {
    fail(`SDK_STORAGE must be memory or local, got ${storageMode}`);
  }

  const client = sdk.gateway({
    client_id: clientId,
    ...(clientSecret ? { client_secret: clientSecret } : {}),
    host,
    protocol,
    custom_fetch: customFetch,
    ...(storage ? { storage } : {}),
  });
  const credsKey = sdkName === '@moltin/sdk' ? 'moltinCredentials' : 'epCredentials';
  const storedCredentials = () => JSON.parse(client.config.storage.get(credsKey) ?? 'null');

  const report = {
    sdk: sdkName,
    sdk_version: pkg.version,
    grant_type: clientSecret ? 'client_credentials' : 'implicit',
    storage: client.config.storage.constructor.name,
    credentials_key: credsKey,
    ttl_seconds: ttl,
  };

  // a. Explicit authentication through the SDK.
  let authResponse;
  try {
    authResponse = await client.Authenticate();
  } catch (err) {
    report.authenticate_error = describe(err);
    report.requests = requests;
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    fail(`Authenticate() rejected: ${JSON.stringify(describe(err))}`);
  }
  const first = storedCredentials();
  if (!first) fail(`SDK stored no credentials after Authenticate(); response was ${JSON.stringify(authResponse)}`);
  report.authenticate_response = authResponse;
  report.first = first;
  report.first_types = Object.fromEntries(Object.entries(first).map(([k, v]) => [k, typeof v]));
  const tokenReq = tokenRequests()[0];
  report.request_method = tokenReq.method;
  report.request_url = tokenReq.url;
  report.request_headers = tokenReq.headers;
  report.request_body = tokenReq.body;
  report.token_requests_after_authenticate = tokenRequests().length;

  // A resource call through the SDK's send() path, which checks the stored credentials first
  // (re-authenticating when they are missing/expired) and on a 401 re-authenticates and retries.
  const resourceCall = async (label) => {
    const before = requests.length;
    let outcome;
    try {
      const data = await client.Products.All();
      outcome = { ok: true, data };
    } catch (err) {
      if (err instanceof Error) throw err; // network failure or SDK bug: unexpected
      outcome = { ok: false, rejection: err }; // an HTTP error body (e.g. 404 JSON), expected
    }
    const made = requests.slice(before);
    return {
      label,
      ...outcome,
      requests: made.map(({ method, path: p, status, is_token_request, headers }) => ({
        method, path: p, status, is_token_request, authorization: headers.Authorization ?? null,
      })),
    };
  };

  // b1. Reuse: a call right away must not hit the token endpoint again.
  report.calls = [];
  report.calls.push(await resourceCall('reuse'));
  report.token_requests_after_reuse = tokenRequests().length;
  const resourceReq = requests.find((r) => !r.is_token_request);
  report.resource_request = resourceReq
    ? { method: resourceReq.method, url: resourceReq.url, headers: resourceReq.headers, body: resourceReq.body }
    : null;

  // b2. Shortly before `expires` (if there is still time) the token must still be reused.
  const expiresMs = Number(first.expires) * 1000;
  const beforeAt = expiresMs - 500;
  if (Number.isFinite(expiresMs) && beforeAt - Date.now() > 50) {
    await sleep(beforeAt - Date.now());
    report.calls.push(await resourceCall('before_expiry'));
    report.token_requests_before_expiry = tokenRequests().length;
  } else {
    report.token_requests_before_expiry = null; // not enough time left to test
  }

  // b3. Just past `expires` the SDK must re-authenticate exactly once.
  if (!Number.isFinite(expiresMs)) fail(`stored expires is not a number: ${JSON.stringify(first.expires)}`);
  const waitMs = expiresMs + 150 - Date.now();
  if (waitMs > (ttl + 5) * 1000) fail(`expires ${first.expires} is implausibly far away (TTL ${ttl}s); milliseconds?`);
  await sleep(waitMs);
  report.calls.push(await resourceCall('after_expiry'));
  report.token_requests_after_expiry = tokenRequests().length;
  report.second = storedCredentials();
  report.token_changed = report.second?.access_token !== first.access_token;
  const last = report.calls[report.calls.length - 1].requests.filter((r) => !r.is_token_request).pop();
  report.after_expiry_call_used_new_token = last
    ? last.authorization === `Bearer ${report.second?.access_token}`
    : null;

  report.token_request_count = tokenRequests().length;
  report.requests = requests.map(({ method, path: p, status, is_token_request, at_ms }) => ({
    method, path: p, status, is_token_request, at_ms,
  }));

  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
}

main().then(
  () => process.exit(0),
  (err) => fail(`unexpected error: ${err && err.stack ? err.stack : JSON.stringify(err)}`),
);
