"""Tests of the storefront page (`storefront/`) in a real browser, on another origin."""
