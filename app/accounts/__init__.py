"""Elastic Path Account Management: realms, password profiles, members, accounts, account tokens."""
