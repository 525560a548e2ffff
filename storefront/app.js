// A storefront on its own origin, calling Keyhouse with plain fetch() and a public client id.
//
// Every call is cross-origin: the token request is a simple form POST, and the /v2 calls carry
// an Authorization header (and X-Moltin-Customer-Token for a shopper, or
// EP-Account-Management-Authentication-Token for an account member), so the browser asks
// Keyhouse with a preflight first. Keyhouse answers both for origins its clients registered
// (`keyhouse clients create --public --origin http://127.0.0.1:3000`).
//
// Lessons from the JavaScript SDKs, applied here too: concurrent calls share one token
// request, and the token's end is computed from `expires_in` on the page's own clock.
'use strict';

const params = new URLSearchParams(window.location.search);
// Kept for this tab: a login provider sends the shopper back without these parameters.
const savedConfig = JSON.parse(sessionStorage.getItem('config') || '{}');
const config = {
  keyhouse: (params.get('keyhouse') || savedConfig.keyhouse || '').replace(/\/+$/, ''),
  clientId: params.get('client_id') || savedConfig.clientId || '',
};
sessionStorage.setItem('config', JSON.stringify(config));
const RENEWAL_MARGIN_SECONDS = 60;

// The cart reference is the page's to choose (contract §4); kept for this tab only. An account
// member shops in their account's cart instead (selectAccount).
const tabCartRef = sessionStorage.getItem('cartRef') || newCartRef();
sessionStorage.setItem('cartRef', tabCartRef);
let cartRef = tabCartRef;

let access = null; // {token, renewAt}
let pendingToken = null; // the one token request in flight, shared by concurrent callers
let shopper = null; // {token, customerId, email}: in memory only, gone on reload
// An account member (contract §8), kept the same way: {id, name, email, accounts, account}, each
// account {id, name, token, cartRef}; `account` is the one whose token goes with every call.
let member = null;
let passwordProfiles = []; // the realm's: the member forms log in and sign up with one
// A password reset link opens this page with `#reset_token=…` (KEYHOUSE_PASSWORD_RESET_URL), and
// an email verification or email change link with `#verify_token=…`
// (KEYHOUSE_EMAIL_VERIFICATION_URL): a fragment never reaches a server's log or a Referer header,
// and it leaves the address bar at once.
let resetToken = takeFragmentToken('reset_token');
let verifyToken = takeFragmentToken('verify_token');
let addresses = [];

function newCartRef() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return 'cart-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function now() {
  return performance.now() / 1000;
}

class KeyhouseError extends Error {
  constructor(status, body) {
    const first = (body && Array.isArray(body.errors) && body.errors[0]) || {};
    super((body && body.error_description) || first.detail || `HTTP ${status}`);
    this.status = status;
    this.error = body && body.error;
  }
}

async function readJson(response) {
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

// --- tokens -------------------------------------------------------------------------------

async function fetchToken() {
  const response = await fetch(`${config.keyhouse}/oauth/access_token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'implicit', client_id: config.clientId }),
  });
  const body = await readJson(response);
  if (!response.ok) throw new KeyhouseError(response.status, body);
  const margin = Math.min(RENEWAL_MARGIN_SECONDS, body.expires_in / 2);
  access = { token: body.access_token, renewAt: now() + body.expires_in - margin };
  return access.token;
}

function accessToken() {
  if (access && now() < access.renewAt) return Promise.resolve(access.token);
  if (!pendingToken) {
    pendingToken = fetchToken().finally(() => {
      pendingToken = null;
    });
  }
  return pendingToken;
}

// One call to the store API. A 401 means the access token (or the shopper's or member's token)
// was refused: renew the access token and try once more; still refused with someone logged in,
// it is their token that ended, so they must log in again. (The page cannot tell which token
// was refused: the WWW-Authenticate header is not exposed to cross-origin scripts.)
async function api(method, path, data, { attempts = 2 } = {}) {
  for (let attempt = 0; attempt < attempts; attempt += 1) {
    const token = await accessToken();
    const headers = { Authorization: `Bearer ${token}` };
    if (shopper) headers['X-Moltin-Customer-Token'] = shopper.token;
    if (member) headers['EP-Account-Management-Authentication-Token'] = member.account.token;
    const init = { method, headers };
    if (data !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify({ data });
    }
    const response = await fetch(config.keyhouse + path, init);
    if (response.status === 401 && attempt + 1 < attempts) {
      if (access && access.token === token) access = null;
      continue;
    }
    const body = await readJson(response);
    if (response.status === 401 && (shopper || member)) {
      forgetLogin();
      throw new KeyhouseError(401, { error_description: 'Please log in again.' });
    }
    if (!response.ok) throw new KeyhouseError(response.status, body);
    return body;
  }
  throw new Error('no attempt made');
}

// --- rendering (text only: nothing from the API is ever parsed as HTML) ----------------------

function $(id) {
  return document.getElementById(id);
}

function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function formatted(price) {
  if (!price) return '–';
  const digits = { JPY: 0, KRW: 0 }[price.currency] ?? 2;
  return `${(price.amount / 10 ** digits).toFixed(digits)} ${price.currency}`;
}

function showStatus(text) {
  $('status').textContent = text;
}

function showError(error) {
  const box = $('error');
  box.hidden = !error;
  box.textContent = error ? error.message : '';
}

function renderProducts(products) {
  const list = $('products');
  list.replaceChildren();
  for (const product of products) {
    const item = element('li', undefined, { 'data-sku': product.sku });
    item.append(element('h3', product.name), element('p', product.description || ''));
    item.append(element('p', formatted(product.price && product.price[0]), { class: 'price' }));
    const add = element('button', 'Add to cart', { type: 'button' });
    add.addEventListener('click', () => run(() => addToCart(product)));
    item.append(add);
    list.append(item);
  }
  if (!products.length) list.append(element('li', 'No products yet.'));
}

function renderCart(document) {
  const list = $('cart');
  list.replaceChildren();
  for (const line of document.data) {
    list.append(element('li', `${line.quantity} × ${line.name} — ${formatted(line.value)}`, {
      'data-sku': line.sku,
    }));
  }
  if (!document.data.length) list.append(element('li', 'Your cart is empty.', { class: 'empty' }));
  const total = document.meta.display_price.with_tax;
  $('cart-total').textContent = document.data.length ? total.formatted : '–';
  updateCheckout(document.data.length > 0);
}

function renderAddresses() {
  const list = $('addresses');
  list.replaceChildren();
  for (const address of addresses) {
    const line = [address.first_name, address.last_name, address.line_1, address.city,
      address.postcode, address.country].filter(Boolean).join(', ');
    list.append(element('li', line, { 'data-id': address.id }));
  }
  if (!addresses.length) list.append(element('li', 'No address yet.', { class: 'empty' }));
}

function renderOrders(orders) {
  const list = $('orders');
  list.replaceChildren();
  for (const order of orders) {
    const total = order.meta.display_price.with_tax.formatted;
    const text = `Order ${order.id.slice(0, 8)} — ${order.status}, ${order.payment} — ${total}`;
    list.append(element('li', text, { 'data-id': order.id }));
  }
  if (!orders.length) list.append(element('li', 'No orders yet.', { class: 'empty' }));
}

let cartHasItems = false;
function updateCheckout(hasItems = cartHasItems) {
  cartHasItems = hasItems;
  let missing = '';
  if (!shopper && !member) missing = 'Log in to check out.';
  else if (!addresses.length) missing = 'Add an address to check out.';
  else if (!cartHasItems) missing = 'Add something to the cart.';
  $('checkout').disabled = Boolean(missing);
  $('checkout-note').textContent = missing;
  $('checkout-note').hidden = !missing;
}

function renderAccount() {
  const loggedIn = Boolean(shopper || member);
  $('logged-out').hidden = loggedIn;
  $('logged-in').hidden = !loggedIn;
  $('shopper-email').textContent = (shopper || member || { email: '' }).email;
  $('page-address-note').hidden = !member;
  renderMemberAccounts();
  updateCheckout();
}

function renderMemberAccounts() {
  $('member-accounts').hidden = !member;
  if (!member) return;
  $('account-name').textContent = member.account.name;
  const select = $('account-select');
  select.replaceChildren(...member.accounts.map(
    (account) => element('option', account.name, { value: account.id }),
  ));
  select.value = member.account.id;
  $('account-switcher').hidden = member.accounts.length < 2;
}

// --- the story ----------------------------------------------------------------------------

async function loadProducts() {
  renderProducts((await api('GET', '/v2/products')).data);
}

async function loadCart() {
  renderCart(await api('GET', `/v2/carts/${cartRef}/items`));
}

// An account member's addresses are the page's (addAddress); a customer's are Keyhouse's.
async function loadAccount() {
  if (shopper) addresses = (await api('GET', `/v2/customers/${shopper.customerId}/addresses`)).data;
  renderAddresses();
  renderOrders((await api('GET', '/v2/orders')).data);
  updateCheckout();
}

async function addToCart(product) {
  renderCart(await api('POST', `/v2/carts/${cartRef}/items`, {
    type: 'cart_item', id: product.id, quantity: 1,
  }));
  showStatus(`Added ${product.name} to the cart.`);
}

async function signUp(form) {
  const fields = Object.fromEntries(new FormData(form));
  form.elements.password.value = '';
  const customer = (await api('POST', '/v2/customers', { type: 'customer', ...fields })).data;
  form.reset();
  $('login-form').elements.email.value = fields.email;
  $('resend-form').elements.email.value = fields.email;
  const inbox = customer.email_verified ? '' : ' Check your inbox for a link to confirm your email.';
  showStatus(`Account created for ${fields.email}.${inbox} Log in to shop.`);
}

async function logIn(form) {
  const { email, password } = Object.fromEntries(new FormData(form));
  form.elements.password.value = ''; // the password goes to Keyhouse and nowhere else
  shopper = null;
  // One attempt: a 401 here is a wrong email or password, and resending it would only count
  // as a second failure (the access token is renewed before it ends, so it is rarely the cause).
  const login = { type: 'token', email, password };
  let token;
  try {
    token = (await api('POST', '/v2/customers/tokens', login, { attempts: 1 })).data;
  } catch (error) {
    // The right password, in a shop that wants a confirmed email first.
    if (error.status === 403) $('resend-form').elements.email.value = email;
    throw error;
  }
  shopper = { token: token.token, customerId: token.customer_id, email };
  renderAccount();
  showStatus(`Logged in as ${email}.`);
  await loadAccount();
}

function takeFragmentToken(name) {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const token = fragment.get(name);
  if (token) window.history.replaceState(null, '', window.location.pathname + window.location.search);
  return token;
}

// The same answer whether the email has an account, is confirmed already, or neither.
async function askForVerification(form) {
  const { email } = Object.fromEntries(new FormData(form));
  const request = { type: 'email_verification_request', email };
  const answer = (await api('POST', '/v2/customers/email-verification', request)).data;
  showStatus(answer.message);
}

// A sign-up's link needs the account's password too: a stranger who signed up with this
// address cannot have its owner confirm it for them. An email change's link needs none.
async function confirmEmail(form) {
  const { password } = Object.fromEntries(new FormData(form));
  form.elements.password.value = '';
  const confirmation = { type: 'email_verification', token: verifyToken };
  if (password) confirmation.password = password;
  const customer = (await api(
    'POST', '/v2/customers/email-verification/confirm', confirmation, { attempts: 1 },
  )).data;
  verifyToken = null; // used up
  form.hidden = true;
  $('login-form').elements.email.value = customer.email;
  showStatus(`Your email ${customer.email} is confirmed: log in to shop.`);
}

// The answer is the same whether or not the email has an account: the page cannot tell either.
async function askForReset(form) {
  const { email } = Object.fromEntries(new FormData(form));
  const request = { type: 'password_reset_request', email };
  const answer = (await api('POST', '/v2/customers/password-reset', request)).data;
  form.reset();
  showStatus(answer.message);
}

async function setNewPassword(form) {
  const { password } = Object.fromEntries(new FormData(form));
  form.elements.password.value = '';
  const reset = { type: 'password_reset', token: resetToken, password };
  const customer = (await api('POST', '/v2/customers/password-reset/confirm', reset)).data;
  resetToken = null; // used up
  form.hidden = true;
  $('login-form').elements.email.value = customer.email;
  showStatus('Your new password is set: log in with it.');
}

function forgetLogin() {
  const accountCart = cartRef !== tabCartRef;
  shopper = null;
  member = null;
  addresses = [];
  cartRef = tabCartRef;
  renderAccount();
  if (accountCart) loadCart().catch(showError); // the tab's own cart again, not the account's
}

// RFC 7009: a storefront may revoke its shopper's or member's tokens with its public client id
// alone.
function revoke(token) {
  return fetch(`${config.keyhouse}/oauth/revoke`, {
    method: 'POST',
    body: new URLSearchParams({ token, client_id: config.clientId }),
  });
}

async function logOut() {
  let tokens = [];
  if (shopper) tokens = [shopper.token];
  if (member) tokens = member.accounts.map((account) => account.token);
  forgetLogin();
  await Promise.all(tokens.map(revoke));
  showStatus('Logged out.');
}

// --- sign-in with a login provider --------------------------------------------------------
// Keyhouse runs the OpenID Connect flow with the provider. The page sends the browser to
// Keyhouse with its redirect URI (this page's address, registered for the client), a state
// and a PKCE challenge, and gets it back with a single-use code (or an error). The code,
// with the PKCE verifier, buys the same customer token a password login gives. State and
// verifier wait in sessionStorage meanwhile: this tab's alone.

const PROVIDER_SIGN_IN = 'providerSignIn';

function redirectUri() {
  return window.location.origin + window.location.pathname;
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomText(size) {
  return base64url(crypto.getRandomValues(new Uint8Array(size)));
}

async function s256(text) {
  return base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}

async function loadProviders() {
  const providers = (await api('GET', '/v2/login-providers')).data;
  const buttons = $('provider-buttons');
  buttons.replaceChildren();
  for (const provider of providers) {
    const button = element('button', `Sign in with ${provider.display_name}`, {
      type: 'button', 'data-provider': provider.name,
    });
    button.addEventListener('click', () => run(() => startProviderSignIn(provider)));
    buttons.append(button);
  }
  $('login-providers').hidden = !providers.length;
}

async function startProviderSignIn(provider) {
  const verifier = randomText(32);
  const state = randomText(16);
  const pending = { verifier, state, provider: provider.display_name };
  sessionStorage.setItem(PROVIDER_SIGN_IN, JSON.stringify(pending));
  const url = new URL(provider.links.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: config.clientId,
    redirect_uri: redirectUri(),
    state,
    code_challenge: await s256(verifier),
    code_challenge_method: 'S256',
  });
  window.location.assign(url);
}

// Back from Keyhouse: `?code=…&state=…`, or `?error=…&error_description=…&state=…`.
async function finishProviderSignIn() {
  const answer = params;
  const pending = JSON.parse(sessionStorage.getItem(PROVIDER_SIGN_IN) || 'null');
  sessionStorage.removeItem(PROVIDER_SIGN_IN);
  // The code leaves the address bar and the history at once: it is good for one exchange.
  window.history.replaceState(null, '', redirectUri());
  if (!pending || answer.get('state') !== pending.state) {
    throw new Error('This sign-in was not started on this page; please start again.');
  }
  if (answer.has('error')) {
    throw new Error(answer.get('error_description') || answer.get('error'));
  }
  const login = {
    type: 'token',
    authentication_mechanism: 'oidc',
    oauth_authorization_code: answer.get('code'),
    oauth_redirect_uri: redirectUri(),
    oauth_code_verifier: pending.verifier,
  };
  const token = (await api('POST', '/v2/customers/tokens', login, { attempts: 1 })).data;
  shopper = { token: token.token, customerId: token.customer_id, email: '' };
  shopper.email = (await api('GET', `/v2/customers/${token.customer_id}`)).data.email;
  renderAccount();
  showStatus(`Signed in with ${pending.provider} as ${shopper.email}.`);
  await loadAccount();
}

// --- account members ----------------------------------------------------------------------
// Elastic Path's account management (contract §8): a member logs in with a username and
// password of one of the realm's password profiles and gets one token per account they buy
// for. The page sends the chosen account's token in EP-Account-Management-Authentication-Token
// beside its access token: the cart is then the account's, and so are checkout and the orders.

const ACCOUNT_TOKEN_TYPE = 'account_management_authentication_token';

// Found as an Elastic Path storefront finds them, with the implicit token: the store's settings
// name the realm and say whether members may sign themselves up; the realm lists its password
// profiles. A store with no profile has no member to log in, and the page shows no member forms.
async function loadMemberForms() {
  const settings = (await api('GET', '/v2/settings/account-authentication')).data;
  const realmId = settings.relationships.authentication_realm.data.id;
  const profiles = `/v2/authentication-realms/${realmId}/password-profiles`;
  passwordProfiles = (await api('GET', profiles)).data;
  $('password-profile').replaceChildren(...passwordProfiles.map(
    (profile) => element('option', profile.name, { value: profile.id }),
  ));
  $('profile-choice').hidden = passwordProfiles.length < 2;
  $('member-signup-form').hidden = !settings.enable_self_signup;
  $('member-forms').hidden = !passwordProfiles.length;
  applyProfile();
}

// In an `email` profile usernames are emails: the browser checks them before Keyhouse does.
function applyProfile() {
  const profile = passwordProfiles.find((each) => each.id === $('password-profile').value);
  const type = profile && profile.username_format === 'email' ? 'email' : 'text';
  for (const form of ['member-login-form', 'member-signup-form']) {
    $(form).elements.username.type = type;
  }
}

// One attempt, as for customers: a wrong password sent again would count as a second failure.
function askForMemberTokens(mechanism, fields) {
  const login = {
    type: ACCOUNT_TOKEN_TYPE,
    authentication_mechanism: mechanism,
    password_profile_id: $('password-profile').value,
    ...fields,
  };
  return api('POST', '/v2/account-members/tokens', login, { attempts: 1 });
}

async function logInMember(form) {
  const { username, password } = Object.fromEntries(new FormData(form));
  form.elements.password.value = '';
  const answer = await askForMemberTokens('password', { username, password });
  form.reset();
  await startMemberSession(answer);
}

async function signUpMember(form) {
  const fields = Object.fromEntries(new FormData(form));
  form.elements.password.value = '';
  let answer;
  try {
    answer = await askForMemberTokens('self_signup', fields);
  } catch (error) {
    throw signUpRefusal(error);
  }
  form.reset();
  await startMemberSession(answer);
}

// Keyhouse's reasons, in a shopper's words where the status says it all.
function signUpRefusal(error) {
  if (error.status === 409) {
    return new Error('This username is taken: choose another, or log in with it.');
  }
  if (error.status === 403) return new Error('This shop does not let members sign themselves up.');
  if (error.status !== 400) return error;
  // "Invalid body.data.email: not an email address." names a field of the request, not the form.
  const reason = error.message.replace(/^Invalid body\.data\.?/, '').replace(/^:\s*/, '');
  return new Error(`Please check the form: ${reason}`);
}

async function startMemberSession(answer) {
  const accounts = answer.data.map((issued) => ({
    id: issued.account_id, name: issued.account_name, token: issued.token, cartRef: null,
  }));
  if (!accounts.length) {
    showStatus('You are a member of no account yet: log in again once the shop adds you to one.');
    return;
  }
  member = { id: answer.meta.account_member_id, accounts, account: accounts[0] };
  try {
    const details = (await api('GET', `/v2/account-members/${member.id}`)).data;
    Object.assign(member, { name: details.name, email: details.email });
    await selectAccount(accounts[0]);
  } catch (error) {
    forgetLogin(); // half logged in is not logged in
    throw error;
  }
  showStatus(`Logged in as ${member.email}, buying for ${member.account.name}.`);
}

// An account's cart follows its members from tab to tab: the page takes the account's first
// cart (`GET /v2/carts` lists an account token's own) or, for an account with none yet, a new
// reference, which becomes the account's with its first item.
async function selectAccount(account) {
  const previous = member.account;
  member.account = account; // its token asks for its carts
  try {
    account.cartRef = account.cartRef || await firstCartOfAccount();
  } catch (error) {
    if (member) { // still buying for the account before
      member.account = previous;
      renderAccount();
    }
    throw error;
  }
  cartRef = account.cartRef;
  renderAccount();
  await Promise.all([loadCart(), loadAccount()]);
}

async function firstCartOfAccount() {
  const carts = (await api('GET', '/v2/carts')).data;
  return carts.length ? carts[0].id : newCartRef();
}

async function switchAccount(select) {
  const account = member.accounts.find((each) => each.id === select.value);
  select.disabled = true; // one switch at a time: a late answer must not land in the next account
  try {
    await selectAccount(account);
  } finally {
    select.disabled = false;
  }
  showStatus(`Now buying for ${account.name}.`);
}

async function addAddress(form) {
  const fields = Object.fromEntries(new FormData(form));
  fields.country = fields.country.toUpperCase();
  if (member) {
    // Keyhouse keeps no account addresses yet (contract §8): the page holds this one.
    addresses = [...addresses, { id: `page-address-${addresses.length + 1}`, ...fields }];
  } else {
    const address = { type: 'address', ...fields };
    await api('POST', `/v2/customers/${shopper.customerId}/addresses`, address);
  }
  form.reset();
  await loadAccount();
  showStatus('Address added.');
}

async function checkOut() {
  const { id, type, meta, ...address } = addresses[0];
  // An account's order names the member who placed it: the `contact` that the SDK's
  // Cart.CheckoutWithAccountManagementToken sends, with the account's token.
  const buyer = member
    ? { contact: { name: member.name, email: member.email } }
    : { customer: { id: shopper.customerId } };
  const order = (await api('POST', `/v2/carts/${cartRef}/checkout`, {
    ...buyer,
    billing_address: address,
    shipping_address: address,
  })).data;
  await Promise.all([loadCart(), loadAccount()]);
  showStatus(`Order ${order.id.slice(0, 8)} placed: ${order.meta.display_price.with_tax.formatted}.`);
}

// Runs one step of the story, showing its error instead of losing it in the console.
async function run(step) {
  showError(null);
  try {
    await step();
  } catch (error) {
    showError(error);
  }
}

function onSubmit(id, handler) {
  $(id).addEventListener('submit', (event) => {
    event.preventDefault();
    run(() => handler(event.target));
  });
}

async function start() {
  if (!config.keyhouse || !config.clientId) {
    showStatus('Add ?keyhouse=URL&client_id=ID to this page\'s address.');
    return;
  }
  onSubmit('signup-form', signUp);
  onSubmit('login-form', logIn);
  onSubmit('address-form', addAddress);
  onSubmit('forgot-form', askForReset);
  onSubmit('reset-form', setNewPassword);
  onSubmit('resend-form', askForVerification);
  onSubmit('verify-form', confirmEmail);
  onSubmit('member-login-form', logInMember);
  onSubmit('member-signup-form', signUpMember);
  $('password-profile').addEventListener('change', applyProfile);
  $('account-select').addEventListener('change', (event) => run(() => switchAccount(event.target)));
  $('reset-form').hidden = !resetToken;
  $('verify-form').hidden = !verifyToken;
  // A link opened in the tab that asked for it only changes the fragment.
  window.addEventListener('hashchange', () => {
    resetToken = takeFragmentToken('reset_token') || resetToken;
    verifyToken = takeFragmentToken('verify_token') || verifyToken;
    $('reset-form').hidden = !resetToken;
    $('verify-form').hidden = !verifyToken;
  });
  $('checkout').addEventListener('click', () => run(checkOut));
  $('logout').addEventListener('click', () => run(logOut));
  renderAccount();
  await run(async () => {
    // The calls start at once and share one token request.
    await Promise.all([loadProducts(), loadCart(), loadProviders(), loadMemberForms()]);
    showStatus(`Connected to ${config.keyhouse} as ${config.clientId}.`);
  });
  if (params.has('code') || params.has('error')) await run(finishProviderSignIn);
  document.body.dataset.ready = 'true';
}

start();
