"""Every ORM class, imported once so `Base.metadata` is complete (Alembic, tests, CLI)."""

from app.accounts.accounts import Account
from app.accounts.members import AccountMember
from app.accounts.memberships import AccountMembership
from app.accounts.password_profiles import PasswordProfile
from app.accounts.passwords import MemberPassword
from app.accounts.realms import AccountRealm
from app.customers.customers import Customer
from app.customers.mail.outbox import MailRequest
from app.customers.mail.tokens import MailToken
from app.customers.oidc.identities import CustomerIdentity
from app.customers.oidc.logins import ProviderLogin
from app.customers.oidc.providers import LoginProvider
from app.oauth.clients import ClientSecret, OAuthClient
from app.oauth.keys import SigningKey
from app.oauth.revocation import Revocation
from app.oauth.secret_binding import ServerSecretFingerprint
from app.oauth.stores import Store
from app.observability.audit import AuditEvent
from app.observability.monitoring import WriteProbe
from app.runtime.db import Base
from app.store.addresses import Address
from app.store.carts import Cart, CartItem
from app.store.orders import Order, OrderItem
from app.store.products import Product

__all__ = [
    "Account",
    "AccountMember",
    "AccountMembership",
    "AccountRealm",
    "Address",
    "AuditEvent",
    "Base",
    "Cart",
    "CartItem",
    "ClientSecret",
    "Customer",
    "CustomerIdentity",
    "LoginProvider",
    "MailRequest",
    "MailToken",
    "MemberPassword",
    "OAuthClient",
    "Order",
    "OrderItem",
    "PasswordProfile",
    "Product",
    "ProviderLogin",
    "Revocation",
    "ServerSecretFingerprint",
    "SigningKey",
    "Store",
    "WriteProbe",
]
