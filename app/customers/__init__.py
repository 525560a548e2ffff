"""Shoppers: sign-up, profiles, and customer tokens from email and password."""
