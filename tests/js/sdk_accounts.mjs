// Drive the official commerce JS SDK (@elasticpath/js-sdk or @moltin/sdk) through Account
// Management authentication against a Keyhouse server, and report what it saw as one JSON
// document.
//
//   KEYHOUSE_URL=http://127.0.0.1:8123 SDK=@elasticpath/js-sdk \
//   PUBLIC_CLIENT_ID=… BACKEND_CLIENT_ID=… BACKEND_CLIENT_SECRET=… node tests/js/sdk_accounts.mjs
//
// A backend gateway (client_credentials) sets the realm up: the settings, a password profile, a
// member (user authentication info) with a username and password, two accounts and the
// member's memberships. A storefront gateway (implicit) logs the member in (one token per
// account), is refused a wrong password, and signs a new member up. Every HTTP request comes
// from the SDK itself; the script only wraps the fetch it hands the SDK to record them.

import fs from 'node:fs';

const SDKS = ['@moltin/sdk', '@elasticpath/js-sdk'];
const USERNAME = 'ron@example.com';
const PASSWORD = 'correct horse battery staple';

for (const level of ['log', 'info', 'debug', 'warn']) {
  console[level] = (...args) => process.stderr.write(`[sdk console.${level}] ${args.join(' ')}\n`);
}

function fail(message) {
  process.stderr.write(`sdk_accounts.mjs: ${message}\n`);
  process.exit(2);
}

function required(name) {
  const value = process.env[name];
  if (!value) fail(`${name} is required`);
  return value;
}

function describe(err) {
  if (err instanceof Error) return { error_class: err.constructor.name, message: err.message };
  return err;
}

async function main() {
  const url = new URL(required('KEYHOUSE_URL'));
  const sdkName = process.env.SDK || '@elasticpath/js-sdk';
  if (!SDKS.includes(sdkName)) fail(`SDK must be one of ${SDKS.join(', ')}, got ${sdkName}`);
  const publicClientId = required('PUBLIC_CLIENT_ID');
  const backendClientId = required('BACKEND_CLIENT_ID');
  const backendClientSecret = required('BACKEND_CLIENT_SECRET');
  const protocol = url.protocol.replace(/:$/, '');
  const host = url.host + url.pathname.replace(/\/+$/, '');
  const sdk = await import(sdkName);
  const pkg = JSON.parse(
    fs.readFileSync(new URL(`./node_modules/${sdkName}/package.json`, import.meta.url), 'utf8'),
  );

  const requests = [];
  const recordingFetch = (gatewayName) => async (input, init = {}) => {
    const reqUrl = new URL(String(input));
    const entry = {
      gateway: gatewayName,
      method: (init.method || 'GET').toUpperCase(),
      path: reqUrl.pathname,
      headers: { ...(init.headers || {}) },
      body: typeof init.body === 'string' ? init.body : null,
    };
    requests.push(entry);
    const res = await globalThis.fetch(input, init);
    entry.status = res.status;
    return res;
  };
  const makeGateway = (name, credentials, headers) =>
    sdk.gateway({
      ...credentials,
      host,
      protocol,
      storage: new sdk.MemoryStorageFactory(),
      custom_fetch: recordingFetch(name),
      ...(headers ? { headers } : {}),
    });
  const backend = makeGateway('backend', {
    client_id: backendClientId,
    client_secret: backendClientSecret,
  });
  const storefront = makeGateway('storefront', { client_id: publicClientId });

  const report = { sdk: sdkName, sdk_version: pkg.version, steps: {} };
  const summarize = (made) =>
    made.map(({ gateway, method, path, status }) => ({ gateway, method, path, status }));
  const step = async (label, call) => {
    const before = requests.length;
    try {
      const result = await call();
      report.steps[label] = summarize(requests.slice(before));
      return result;
    } catch (err) {
      report.failed_step = label;
      report.rejection = describe(err);
      report.requests = summarize(requests);
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      fail(`${label}: the SDK call rejected: ${JSON.stringify(describe(err))}`);
    }
  };
  const refused = async (label, call) => {
    const before = requests.length;
    try {
      const resolved = await call();
      fail(`${label}: expected a refusal, the SDK resolved ${JSON.stringify(resolved)}`);
    } catch (err) {
      if (err instanceof Error) fail(`${label}: the SDK threw: ${err.stack}`);
      const made = requests.slice(before).filter((r) => r.path !== '/oauth/access_token');
      report.steps[label] = summarize(requests.slice(before));
      return { status: made.length ? made[made.length - 1].status : null, body: err };
    }
  };

  // 1. The backend reads and changes the account authentication settings.
  const settings = await step('settings_get', () => backend.AccountAuthenticationSettings.Get());
  const realmId = settings.data.relationships.authentication_realm.data.id;
  report.settings = settings.data;
  const updated = await step('settings_update', () =>
    backend.AccountAuthenticationSettings.Update({
      enable_self_signup: true,
      auto_create_account_for_account_members: true,
    }),
  );
  report.settings_updated = updated.data;

  // 2. A password profile, a member and their username and password.
  const profile = await step('password_profile_create', () =>
    backend.PasswordProfile.Create(realmId, {
      data: { type: 'password_profile', name: 'Email and password', username_format: 'email' },
    }),
  );
  const profileId = profile.data.id;
  report.password_profile = profile.data;
  const profiles = await step('password_profile_all', () => backend.PasswordProfile.All(realmId));
  report.password_profile_ids = profiles.data.map((p) => p.id);
  const profileGot = await step('password_profile_get', () =>
    backend.PasswordProfile.Get({ realmId, profileId }),
  );
  report.password_profile_got = profileGot.data.id;
  const info = await step('user_authentication_info_create', () =>
    backend.UserAuthenticationInfo.Create(realmId, {
      data: { type: 'user_authentication_info', name: 'Ron Swanson', email: USERNAME },
    }),
  );
  const memberId = info.data.id;
  report.user_authentication_info = info.data;
  const secret = await step('password_profile_info_create', () =>
    backend.UserAuthenticationPasswordProfile.Create(realmId, memberId, {
      data: {
        type: 'user_authentication_password_profile_info',
        username: USERNAME,
        password: PASSWORD,
        password_profile_id: profileId,
      },
    }),
  );
  report.password_profile_info = secret.data;
  const secrets = await step('password_profile_info_all', () =>
    backend.UserAuthenticationPasswordProfile.All(realmId, memberId),
  );
  report.password_profile_info_ids = secrets.data.map((s) => s.id);
  const member = await step('account_member_get', () => backend.AccountMembers.Get(memberId));
  report.account_member = member.data;
  const members = await step('account_members_all', () => backend.AccountMembers.All());
  report.account_member_ids = members.data.map((m) => m.id);

  // 3. Two accounts, and the member in both.
  const accountIds = [];
  for (const name of ['Acme', 'Bolt']) {
    const account = await step(`account_create_${name}`, () =>
      backend.Accounts.Create({ type: 'account', name, legal_name: `${name} Ltd` }),
    );
    accountIds.push(account.data.id);
    await step(`membership_create_${name}`, () =>
      backend.AccountMemberships.Create(account.data.id, {
        type: 'account_membership',
        account_member_id: memberId,
      }),
    );
  }
  report.account_ids = accountIds;
  const accounts = await step('accounts_all', () => backend.Accounts.All());
  report.accounts_listed = accounts.data.map((a) => a.id);
  const memberships = await step('memberships_all', () =>
    backend.AccountMemberships.All(accountIds[0]),
  );
  report.memberships_of_first = memberships.data.map((m) => m.relationships.account_member.data.id);
  const ofMember = await step('memberships_of_member', () =>
    backend.AccountMemberships.AllOnAccountMember(memberId),
  );
  report.memberships_of_member = ofMember.data.map((m) => m.relationships.account.data.id);

  // 4. The storefront logs the member in: a token per account.
  const login = await step('account_token_password', () =>
    storefront.AccountMembers.GenerateAccountToken({
      type: 'account_management_authentication_token',
      authentication_mechanism: 'password',
      password_profile_id: profileId,
      username: USERNAME,
      password: PASSWORD,
    }),
  );
  report.login = { data: login.data, meta: login.meta };
  report.wrong_password = await refused('account_token_wrong_password', () =>
    storefront.AccountMembers.GenerateAccountToken({
      type: 'account_management_authentication_token',
      authentication_mechanism: 'password',
      password_profile_id: profileId,
      username: USERNAME,
      password: 'not the password',
    }),
  );
  const signup = await step('account_token_self_signup', () =>
    storefront.AccountMembers.GenerateAccountToken({
      type: 'account_management_authentication_token',
      authentication_mechanism: 'self_signup',
      password_profile_id: profileId,
      username: 'leslie@example.com',
      password: PASSWORD,
      name: 'Leslie Knope',
      email: 'leslie@example.com',
    }),
  );
  report.signup = { data: signup.data, meta: signup.meta };

  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
