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
import { ADDRESS, describe, fail, required, sdkName as chosenSdk } from './script.mjs';

const USERNAME = 'ron@example.com';
const ACCOUNT_HEADER = 'EP-Account-Management-Authentication-Token';
const CART_REF = 'acme-sdk-cart';
const PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'a brand new password';

async function main() {
  const url = new URL(required('KEYHOUSE_URL'));
  const sdkName = chosenSdk('@elasticpath/js-sdk');
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
      account_member_self_management: 'update_only',
    }),
  );
  report.settings_updated = updated.data;
  const realm = await step('authentication_realm_get', () =>
    backend.AuthenticationRealm.Get({ realmId }),
  );
  report.realm = { id: realm.data.id, type: realm.data.type };

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

  // 5. With Acme's token beside the implicit one: Acme's account, an Acme cart, checkout and
  // Acme's orders; Bolt's token sees none of it. The SDK sends the header itself where a call
  // takes the token (AddProduct's headers, CheckoutWithAccountManagementToken); elsewhere the
  // gateway's `headers` option carries it, as storefronts built on the SDK do.
  const product = await step('product_create', () =>
    backend.Products.Create({
      name: 'Account Tee',
      slug: 'account-tee',
      sku: 'ACCOUNT-TEE',
      description: 'A tee bought for an account.',
      manage_stock: false,
      price: [{ amount: 1999, currency: 'USD', includes_tax: true }],
      status: 'live',
      commodity_type: 'physical',
    }),
  );
  const [acme, bolt] = login.data;
  const acmeFront = makeGateway('acme', { client_id: publicClientId }, { [ACCOUNT_HEADER]: acme.token });
  const boltFront = makeGateway('bolt', { client_id: publicClientId }, { [ACCOUNT_HEADER]: bolt.token });
  const ownAccount = await step('account_get_own', () => acmeFront.Accounts.Get(acme.account_id));
  report.own_account = { id: ownAccount.data.id, name: ownAccount.data.name };
  report.other_account = await refused('account_get_other', () =>
    boltFront.Accounts.Get(acme.account_id),
  );
  const added = await step('account_cart_add', () =>
    storefront.Cart(CART_REF).AddProduct(product.data.id, 2, {}, false, null, {
      [ACCOUNT_HEADER]: acme.token,
    }),
  );
  report.cart_items = added.data.map((i) => ({ product_id: i.product_id, quantity: i.quantity }));
  const carts = await step('account_carts_list', () => acmeFront.Cart().GetCartsList());
  report.acme_carts = carts.data.map((c) => c.id);
  const boltCarts = await step('account_carts_list_other', () => boltFront.Cart().GetCartsList());
  report.bolt_carts = boltCarts.data.map((c) => c.id);
  report.other_cart = await refused('account_cart_get_other', () => boltFront.Cart(CART_REF).Get());
  const order = await step('account_checkout', () =>
    storefront
      .Cart(CART_REF)
      .CheckoutWithAccountManagementToken(
        { name: 'Ron Swanson', email: USERNAME },
        ADDRESS,
        ADDRESS,
        acme.token,
      ),
  );
  report.order = {
    id: order.data.id,
    account: order.data.relationships.account?.data ?? null,
    customer: order.data.customer,
  };
  const orders = await step('account_orders', () => acmeFront.Orders.All());
  report.acme_orders = orders.data.map((o) => o.id);
  const boltOrders = await step('account_orders_other', () => boltFront.Orders.All());
  report.bolt_orders = boltOrders.data.map((o) => o.id);
  report.other_order = await refused('account_order_get_other', () =>
    boltFront.Orders.Get(order.data.id),
  );
  // 6. Switching: Acme's token asks for fresh tokens of every account of its member.
  const switched = await step('account_token_switch', () =>
    acmeFront.AccountMembers.GenerateAccountToken({
      type: 'account_management_authentication_token',
      authentication_mechanism: 'account_management_authentication_token',
    }),
  );
  report.switched = switched.data.map((t) => t.account_id);
  // 7. Self-management: the member changes their own password with their account token, then
  // logs in with the new one. @elasticpath/js-sdk's Update takes the token and sends the header
  // itself; @moltin/sdk 36's has no such parameter, so its gateway's `headers` carry it.
  const change = {
    data: { type: 'user_authentication_password_profile_info', password: NEW_PASSWORD },
  };
  const changed = await step('own_password_update', () =>
    sdkName === '@elasticpath/js-sdk'
      ? storefront.UserAuthenticationPasswordProfile.Update(
          realmId, memberId, secret.data.id, change, null, acme.token,
        )
      : acmeFront.UserAuthenticationPasswordProfile.Update(
          realmId, memberId, secret.data.id, change,
        ),
  );
  report.own_password_changed = changed.data.id;
  const relogin = await step('account_token_new_password', () =>
    storefront.AccountMembers.GenerateAccountToken({
      type: 'account_management_authentication_token',
      authentication_mechanism: 'password',
      password_profile_id: profileId,
      username: USERNAME,
      password: NEW_PASSWORD,
    }),
  );
  report.relogin = relogin.data.map((t) => t.account_id);
  report.account_header_sent = requests
    .filter((r) => r.gateway === 'storefront' && r.path.endsWith('/checkout'))
    .map((r) => Object.keys(r.headers).find((k) => k.toLowerCase() === ACCOUNT_HEADER.toLowerCase()) || null);

  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
