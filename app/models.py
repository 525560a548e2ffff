"""Every ORM class, imported once so `Base.metadata` is complete (Alembic, tests, CLI)."""

from app.customers.customers import Customer
from app.db import Base
from app.oauth.clients import ClientSecret, OAuthClient
from app.oauth.keys import SigningKey
from app.oauth.stores import Store

__all__ = ["Base", "ClientSecret", "Customer", "OAuthClient", "SigningKey", "Store"]
