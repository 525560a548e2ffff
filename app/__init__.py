"""Keyhouse: an OAuth-style token server for commerce APIs."""
