"""Shoppers signing in through an external OpenID Connect provider instead of a password.

An operator registers a store's providers (`providers.py`, `commands.py`). A storefront sends
the shopper to `GET /oauth/customers/login/{provider}` (`router.py`); Keyhouse runs the
authorization code flow with PKCE, `state` and `nonce` against the provider (`logins.py`,
`provider_client.py`), verifies the ID token (`id_tokens.py`), finds, links or creates the
customer (`matching.py`, `identities.py`), and sends the shopper back with a short-lived,
single-use code that the storefront exchanges at `POST /v2/customers/tokens` for an ordinary
customer token (`handover.py`). A logged-in shopper links and unlinks providers from their
account (`links.py`, `link_routes.py`).
"""
