"""The issuing side: clients, grants, tokens and signing keys (RFC 6749, 9068, 8414)."""
