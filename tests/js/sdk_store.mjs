// Drive the official commerce JS SDK (@moltin/sdk or @elasticpath/js-sdk) through the whole
// storefront story against a Keyhouse server, and report what it saw as one JSON document.
//
//   KEYHOUSE_URL=http://127.0.0.1:8123 SDK=@moltin/sdk \
//   PUBLIC_CLIENT_ID=… BACKEND_CLIENT_ID=… BACKEND_CLIENT_SECRET=… \
//   CUSTOMER_EMAIL=ron@example.com CUSTOMER_PASSWORD='correct horse battery staple' \
//     node tests/js/sdk_store.mjs
//
// Optional: CUSTOMER_NAME (default "Ron Swanson"), PRODUCT_SKU (default "SDK-TEE"),
// CART_REF (default: a fresh random reference).
//
// Two gateways, each with its own MemoryStorageFactory: a storefront (implicit grant, public
// client id) and a backend (client_credentials). Every HTTP request comes from the SDK itself;
// the script only wraps the fetch it hands the SDK (`custom_fetch`) to record the requests.
// Exit 0 with the report; non-zero with a message (and the rejection body) on stderr if an SDK
// call rejects unexpectedly, or resolves where a refusal was expected.

import fs from 'node:fs';
import crypto from 'node:crypto';
import { ADDRESS, describe, fail, required, sdkName as chosenSdk } from './script.mjs';

const CUSTOMER_TOKEN_HEADER = 'X-MOLTIN-CUSTOMER-TOKEN';

function headerOf(headers, name) {
  const key = Object.keys(headers || {}).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? null : headers[key];
}

async function main() {
  const baseUrl = required('KEYHOUSE_URL');
  const sdkName = chosenSdk('@moltin/sdk');
  const publicClientId = required('PUBLIC_CLIENT_ID');
  const backendClientId = required('BACKEND_CLIENT_ID');
  const backendClientSecret = required('BACKEND_CLIENT_SECRET');
  const email = required('CUSTOMER_EMAIL');
  const password = required('CUSTOMER_PASSWORD');
  const customerName = process.env.CUSTOMER_NAME || 'Ron Swanson';
  const sku = process.env.PRODUCT_SKU || 'SDK-TEE';
  const cartRef = process.env.CART_REF || crypto.randomBytes(16).toString('hex');

  const url = new URL(baseUrl);
  const protocol = url.protocol.replace(/:$/, '');
  const host = url.host + url.pathname.replace(/\/+$/, ''); // SDK builds `${protocol}://${host}/…`

  const sdk = await import(sdkName);
  const pkg = JSON.parse(
    fs.readFileSync(new URL(`./node_modules/${sdkName}/package.json`, import.meta.url), 'utf8'),
  );

  // Every request either gateway makes, in order.
  const requests = [];
  const recordingFetch = (gatewayName) => async (input, init = {}) => {
    const reqUrl = new URL(String(input));
    const entry = {
      gateway: gatewayName,
      method: (init.method || 'GET').toUpperCase(),
      path: reqUrl.pathname,
      query: reqUrl.search,
      headers: { ...(init.headers || {}) },
      body: typeof init.body === 'string' ? init.body : init.body == null ? null : String(init.body),
      is_token_request: reqUrl.pathname === '/oauth/access_token',
    };
    requests.push(entry);
    const res = await globalThis.fetch(input, init);
    entry.status = res.status;
    entry.www_authenticate = res.headers.get('www-authenticate');
    return res;
  };

  const makeGateway = (name, credentials) =>
    sdk.gateway({
      ...credentials,
      host,
      protocol,
      storage: new sdk.MemoryStorageFactory(),
      custom_fetch: recordingFetch(name),
    });
  const storefront = makeGateway('storefront', { client_id: publicClientId });
  const backend = makeGateway('backend', {
    client_id: backendClientId,
    client_secret: backendClientSecret,
  });

  const report = { sdk: sdkName, sdk_version: pkg.version, cart_ref: cartRef, steps: {} };

  // Runs one SDK call; records the requests it made. An unexpected rejection ends the run.
  const step = async (label, call) => {
    const before = requests.length;
    let result;
    try {
      result = await call();
    } catch (err) {
      report.failed_step = label;
      report.rejection = describe(err);
      report.requests = requests;
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      fail(`${label}: the SDK call rejected: ${JSON.stringify(describe(err))}`);
    }
    report.steps[label] = summarize(requests.slice(before));
    return result;
  };

  // Runs one SDK call that must be refused; returns the HTTP status and the rejection body.
  const refusedStep = async (label, call) => {
    const before = requests.length;
    let resolved;
    try {
      resolved = await call();
    } catch (err) {
      if (err instanceof Error) fail(`${label}: the SDK threw: ${err.stack}`);
      const made = requests.slice(before);
      report.steps[label] = summarize(made);
      const last = made.filter((r) => !r.is_token_request).pop();
      return {
        status: last ? last.status : null,
        www_authenticate: last ? last.www_authenticate : null,
        body: err,
      };
    }
    fail(`${label}: expected a refusal, the SDK resolved ${JSON.stringify(resolved)}`);
  };

  const summarize = (made) =>
    made.map(({ gateway, method, path, query, status, is_token_request }) => ({
      gateway, method, path, query, status, is_token_request,
    }));

  // 1. The backend (client_credentials) puts a live product on sale.
  const created = await step('product_create', () =>
    backend.Products.Create({
      name: 'SDK Tee',
      slug: sku.toLowerCase(),
      sku,
      description: 'A tee bought through the JS SDK.',
      manage_stock: false,
      price: [{ amount: 1999, currency: 'USD', includes_tax: true }],
      status: 'live',
      commodity_type: 'physical',
    }),
  );
  const productId = created.data.id;
  report.product = { id: productId, status: created.data.status, sku: created.data.sku };

  // 2. The storefront (implicit) lists the catalogue and reads the product.
  const listed = await step('products_all', () => storefront.Products.All());
  report.storefront_products = {
    ids: listed.data.map((p) => p.id),
    total: listed.meta?.results?.total ?? null,
  };
  const got = await step('product_get', () => storefront.Products.Get(productId));
  report.storefront_product = {
    id: got.data.id, name: got.data.name, status: got.data.status, price: got.data.price,
  };

  // 3. A shopper signs up through the storefront and logs in.
  const signedUp = await step('customer_create', () =>
    storefront.Customers.Create({ name: customerName, email, password }),
  );
  report.customer = {
    id: signedUp.data.id,
    type: signedUp.data.type,
    email: signedUp.data.email,
    has_password: 'password' in signedUp.data,
  };
  const login = await step('customer_token', () => storefront.Customers.TokenViaPassword(email, password));
  const customerToken = login.data.token;
  const customerId = login.data.customer_id;
  report.customer_token = {
    type: login.data.type,
    customer_id: customerId,
    token: customerToken,
    expires: login.data.expires,
    expires_in: login.data.expires_in,
  };

  // 3b. The shopper renames themselves with their own token (Customers.Update, the email sent
  // back unchanged as a profile form does); a new password that way is refused: the dedicated
  // route asks for the current one.
  const renamed = await step('customer_update', () =>
    storefront.Customers.Update(customerId, { name: 'Ronald Swanson', email }, customerToken),
  );
  report.customer_update = { name: renamed.data.name, email: renamed.data.email };
  await step('customer_update_back', () =>
    storefront.Customers.Update(customerId, { name: customerName }, customerToken),
  );
  report.customer_password_update = await refusedStep('customer_password_update', () =>
    storefront.Customers.Update(customerId, { password: 'a thief chose this' }, customerToken),
  );

  // 4. With the customer token: save an address, list the addresses, read it back.
  const address = await step('address_create', () =>
    storefront.CustomerAddresses.Create({ customer: customerId, body: ADDRESS, token: customerToken }),
  );
  report.address = address.data;
  const addresses = await step('addresses_all', () =>
    storefront.CustomerAddresses.All({ customer: customerId, token: customerToken }),
  );
  report.addresses = {
    ids: addresses.data.map((a) => a.id),
    total: addresses.meta?.results?.total ?? null,
  };
  const oneAddress = await step('address_get', () =>
    storefront.CustomerAddresses.Get({ customer: customerId, address: address.data.id, token: customerToken }),
  );
  report.address_get = { id: oneAddress.data.id, line_1: oneAddress.data.line_1 };

  // 5. Fill a cart (ref chosen here), read its items and total.
  const cart = storefront.Cart(cartRef);
  const added = await step('cart_add_product', () => cart.AddProduct(productId, 2));
  report.cart_add_response = { data: added.data, meta: added.meta };
  const items = await step('cart_items', () => storefront.Cart(cartRef).Items());
  report.cart_items = { data: items.data, meta: items.meta };
  const cartGet = await step('cart_get', () => storefront.Cart(cartRef).Get());
  report.cart = cartGet.data;

  // 6. Check out. Cart.Checkout has no customer-token parameter: naming the customer without
  // their token is refused (the order would belong to someone the caller has not proved to be).
  report.checkout_without_customer_token = await refusedStep('checkout_without_customer_token', () =>
    storefront.Cart(cartRef).Checkout(customerId, address.data, address.data),
  );
  // The SDK's documented fourth argument, additionalHeaders, carries the customer token.
  const order = await step('checkout', () =>
    storefront
      .Cart(cartRef)
      .Checkout(customerId, address.data, address.data, { [CUSTOMER_TOKEN_HEADER]: customerToken }),
  );
  const orderId = order.data.id;
  report.order = order.data;
  const emptied = await step('cart_items_after_checkout', () => storefront.Cart(cartRef).Items());
  report.cart_items_after_checkout = emptied.data.length;

  // 7. The shopper's orders, filtered, and the single order, with the customer token.
  const incomplete = await step('orders_filter_incomplete', () =>
    storefront.Orders.Filter({ eq: { status: 'incomplete' } }).All(customerToken),
  );
  report.orders_incomplete = {
    ids: incomplete.data.map((o) => o.id),
    statuses: incomplete.data.map((o) => o.status),
    customer_ids: incomplete.data.map((o) => o.relationships?.customer?.data?.id ?? null),
    total: incomplete.meta?.results?.total ?? null,
  };
  const complete = await step('orders_filter_complete', () =>
    storefront.Orders.Filter({ eq: { status: 'complete' } }).All(customerToken),
  );
  report.orders_complete = {
    ids: complete.data.map((o) => o.id),
    total: complete.meta?.results?.total ?? null,
  };
  const single = await step('order_get', () => storefront.Orders.Get(orderId, customerToken));
  report.order_get = {
    id: single.data.id,
    status: single.data.status,
    customer_id: single.data.relationships?.customer?.data?.id ?? null,
  };

  // 8. Without the customer token the storefront may not read orders at all.
  report.orders_without_customer_token = await refusedStep('orders_without_customer_token', () =>
    storefront.Orders.All(),
  );
  report.order_get_without_customer_token = await refusedStep('order_get_without_customer_token', () =>
    storefront.Orders.Get(orderId),
  );

  // 9. The backend sees the order too.
  const backendOrder = await step('backend_order_get', () => backend.Orders.Get(orderId));
  report.backend_order = {
    id: backendOrder.data.id,
    customer_id: backendOrder.data.relationships?.customer?.data?.id ?? null,
  };

  // What the SDK sent: every request carrying the customer token, and the token requests.
  report.customer_token_requests = requests
    .filter((r) => headerOf(r.headers, CUSTOMER_TOKEN_HEADER) !== null)
    .map(({ method, path, query, status, headers }) => ({ method, path, query, status, headers }));
  report.token_requests = {
    storefront: requests.filter((r) => r.gateway === 'storefront' && r.is_token_request).length,
    backend: requests.filter((r) => r.gateway === 'backend' && r.is_token_request).length,
  };
  report.credentials = {
    storefront: storefront.credentials(),
    backend: backend.credentials(),
  };
  report.requests = requests.map(({ gateway, method, path, query, status, is_token_request, headers }) => ({
    gateway,
    method,
    path,
    query,
    status,
    is_token_request,
    authorization: headerOf(headers, 'Authorization'),
    customer_token: headerOf(headers, CUSTOMER_TOKEN_HEADER),
  }));

  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
}

main().then(
  () => process.exit(0),
  (err) => fail(`unexpected error: ${err && err.stack ? err.stack : JSON.stringify(err)}`),
);
