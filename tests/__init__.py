"""Tests of the Keyhouse application, mirroring `app/`."""
