"""Tests of the issuing side (`app/oauth`)."""
