// Drive the official commerce JS SDK (@moltin/sdk or @elasticpath/js-sdk) through one mistyped
// login and then the right one, against a Keyhouse server, and report every request it made.
//
//   KEYHOUSE_URL=http://127.0.0.1:8123 SDK=@moltin/sdk PUBLIC_CLIENT_ID=… \
//   CUSTOMER_EMAIL=ron@example.com CUSTOMER_PASSWORD='…' WRONG_PASSWORD='…' \
//     node tests/js/sdk_login.mjs
//
// On a 401 the SDK re-authenticates and resends the login, up to `fetchMaxAttempts` (4) sends;
// the lockout must count those resends of one typo as one failure. The retry delay is the
// SDK's own option, shortened so the run takes a moment instead of seconds.

import { fail, required, sdkName as chosenSdk } from './script.mjs';

const LOGIN_PATH = '/v2/customers/tokens';

async function main() {
  const baseUrl = new URL(required('KEYHOUSE_URL'));
  const sdkName = chosenSdk('@moltin/sdk');
  const email = required('CUSTOMER_EMAIL');
  const password = required('CUSTOMER_PASSWORD');
  const wrongPassword = required('WRONG_PASSWORD');

  const requests = [];
  const recordingFetch = async (input, init = {}) => {
    const entry = { method: (init.method || 'GET').toUpperCase(), path: new URL(String(input)).pathname };
    requests.push(entry);
    const response = await globalThis.fetch(input, init);
    entry.status = response.status;
    return response;
  };
  const sdk = await import(sdkName);
  const storefront = sdk.gateway({
    client_id: required('PUBLIC_CLIENT_ID'),
    host: baseUrl.host,
    protocol: baseUrl.protocol.replace(/:$/, ''),
    storage: new sdk.MemoryStorageFactory(),
    custom_fetch: recordingFetch,
    retryDelay: 20,
    retryJitter: 10,
  });
  const logins = (from) =>
    requests.slice(from).filter((r) => r.method === 'POST' && r.path === LOGIN_PATH).map((r) => r.status);

  const report = { sdk: sdkName };
  let before = requests.length;
  try {
    const resolved = await storefront.Customers.TokenViaPassword(email, wrongPassword);
    fail(`the mistyped login resolved: ${JSON.stringify(resolved)}`);
  } catch (err) {
    if (err instanceof Error) fail(`the SDK threw: ${err.stack}`);
    report.typo = { login_statuses: logins(before), rejection: err };
  }
  before = requests.length;
  const login = await storefront.Customers.TokenViaPassword(email, password);
  report.login = { login_statuses: logins(before), customer_id: login.data.customer_id };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
}

main().then(
  () => process.exit(0),
  (err) => fail(`unexpected error: ${err && err.stack ? err.stack : JSON.stringify(err)}`),
);
