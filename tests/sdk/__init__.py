"""Tests of the Python client (`sdk/keyhouse_client`) against a live Keyhouse."""
