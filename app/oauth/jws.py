"""Compact JWS signing (RFC 7515 §7.1) of our own tokens, with ES256 or RS256 (RFC 7518 §3).

Measured under load, PyJWT spent more time around the signature than in it (header and claim
serialisation, key checks on every call). Here the protected header is serialised once per key
and the claims once per token. Verification stays with standard libraries: the tests check every
kind of token we sign with PyJWT and PyJWKClient against the published JWKS.
"""

import base64
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
ES256_COORDINATE_BYTES = 32
# Built once: constructing them costs a measurable share of a signature.
ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
RSA_PKCS1V15 = padding.PKCS1v15()
SHA256 = hashes.SHA256()


def b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class CompactSigner:
    """Signs claim sets as compact JWS under one key; `typ` tells token kinds apart."""

    def __init__(self, *, private_key: PrivateKey, algorithm: str, kid: str) -> None:
        if algorithm == "ES256" and isinstance(private_key, ec.EllipticCurvePrivateKey):
            if not isinstance(private_key.curve, ec.SECP256R1):
                raise ValueError("ES256 needs a P-256 key")
        elif not (algorithm == "RS256" and isinstance(private_key, rsa.RSAPrivateKey)):
            raise ValueError(f"{algorithm} does not fit this key")
        self._private_key = private_key
        self._algorithm = algorithm
        self._kid = kid
        self._header_segments: dict[str, bytes] = {}

    def sign(self, claims: dict[str, Any], *, typ: str) -> str:
        signing_input = self._header_segment(typ) + b64url(orjson.dumps(claims))
        return (signing_input + b"." + b64url(self._signature(signing_input))).decode()

    def _header_segment(self, typ: str) -> bytes:
        segment = self._header_segments.get(typ)
        if segment is None:
            header = {"alg": self._algorithm, "kid": self._kid, "typ": typ}
            segment = self._header_segments[typ] = b64url(orjson.dumps(header)) + b"."
        return segment

    def _signature(self, signing_input: bytes) -> bytes:
        key = self._private_key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            # JWS wants the raw r || s, not the DER that OpenSSL returns (RFC 7518 §3.4).
            r, s = decode_dss_signature(key.sign(signing_input, ECDSA_SHA256))
            return r.to_bytes(ES256_COORDINATE_BYTES, "big") + s.to_bytes(
                ES256_COORDINATE_BYTES, "big"
            )
        return key.sign(signing_input, RSA_PKCS1V15, SHA256)
