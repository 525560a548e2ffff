// A real OpenID provider (node-oidc-provider), for the sign-in tests: one client, Keyhouse,
// whose only redirect URI is Keyhouse's callback, and the test users given in ACCOUNTS.
//
// Users sign in on the library's development interaction pages (any password; the login is
// the account id). Run with PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI and ACCOUNTS (JSON:
// {"login": {"email", "email_verified", "name"}}); prints {"issuer": …} once it listens.
import Provider from 'oidc-provider';

const { PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, ACCOUNTS } = process.env;
const issuer = `http://127.0.0.1:${PORT}`;
const accounts = JSON.parse(ACCOUNTS);

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [REDIRECT_URI],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  cookies: { keys: ['keyhouse tests: not a secret'] },
  async findAccount(_ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...account }) };
  },
});

// The library warns about its development-only defaults (interactions, signing keys, HTTP),
// which is what this provider is for: quiet on stderr, so failures stand out.
provider.on('server_error', (_ctx, error) => console.error(error));

const server = provider.listen(Number(PORT), '127.0.0.1', () => {
  console.log(JSON.stringify({ issuer }));
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
