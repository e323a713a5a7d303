"""Python side of the PII encryption and fingerprints: the same format as the SQL functions of
migrations/20250824_080000_create_pii_functions, so the application can read what SQL wrote and the reverse.

Ciphertext: ``v1.<key_id>.<base64(iv[16] || AES-256-CBC(PKCS#7) || tag[32])>`` where
``key_id = hex(HMAC-SHA256(key, "mercurio-pii-key-id"))[:8]``, the AES key is
``HMAC-SHA256(key, "mercurio-pii-enc-v1")``, the MAC key ``HMAC-SHA256(key, "mercurio-pii-mac-v1")`` and
``tag = HMAC-SHA256(mac key, "v1.<key_id>." || iv || ciphertext)`` (encrypt-then-MAC).

Fingerprint: ``hex(HMAC-SHA256(hmac key, normalize(value)))``; see :func:`normalize`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mercurio_migrate.errors import MercurioError

VERSION = "v1"
IV_BYTES = 16
TAG_BYTES = 32
_BLOCK = 16
_WHITESPACE = " \t\n\r\f\v"
_UPPER_TO_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_PHONE_SHAPE = re.compile(r"\+?[0-9 ().-]+")


class PiiError(MercurioError):
    """A ciphertext that cannot be decrypted (malformed, unknown version or key, or tampered with)."""


class PiiKeyMissing(MercurioError):
    """No key was given and the environment holds none."""

    exit_code = 2


def normalize(value: str) -> str:
    """The canonical form fingerprints are computed over (identical to SQL ``pii_normalize``).

    Always: strip ASCII whitespace, lower-case ASCII letters (only ASCII, so the result does not depend on
    a database collation). A value made only of digits, spaces, dots, dashes, parentheses and an optional
    leading ``+``, with 7 to 15 digits once an international ``00`` prefix is dropped, is a phone number
    and becomes E.164: ``+`` and its digits. No country code is guessed for national numbers.
    """
    text = value.strip(_WHITESPACE).translate(_UPPER_TO_LOWER)
    if not _PHONE_SHAPE.fullmatch(text):
        return text
    digits = re.sub(r"[^0-9]", "", text)
    if not text.startswith("+") and digits.startswith("00"):
        digits = digits[2:]
    if 7 <= len(digits) <= 15:
        return "+" + digits
    return text


def _mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def key_id(key: str) -> str:
    return _mac(key.encode("utf-8"), b"mercurio-pii-key-id").hex()[:8]


def _subkey(key: str, purpose: str) -> bytes:
    return _mac(key.encode("utf-8"), f"mercurio-pii-{purpose}-v1".encode())


@dataclass(frozen=True)
class Keyring:
    """The current PII key (encrypts) and retired ones (still decrypt during a rotation)."""

    current: str
    old: tuple[str, ...] = ()

    def __repr__(self) -> str:  # keys must never reach logs or tracebacks
        return f"Keyring(current=<{key_id(self.current)}>, old={[f'<{key_id(k)}>' for k in self.old]})"

    def by_id(self, wanted: str) -> str | None:
        for key in (self.current, *self.old):
            if key_id(key) == wanted:
                return key
        return None

    @classmethod
    def from_env(cls) -> Keyring:
        from mercurio_migrate import keys

        current = keys.lookup(keys.PII_KEY_ENV)
        if not current:
            raise PiiKeyMissing(f"no PII key: set {keys.PII_KEY_ENV}",
                                hint=f"Retired keys go in {keys.PII_OLD_KEYS_ENV}, comma-separated.")
        old = tuple(k for k in (keys.lookup(keys.PII_OLD_KEYS_ENV) or "").split(",") if k)
        return cls(current, old)


def _keyring(keys: Keyring | str | Sequence[str] | None) -> Keyring:
    if keys is None:
        return Keyring.from_env()
    if isinstance(keys, Keyring):
        return keys
    if isinstance(keys, str):
        return Keyring(keys)
    keys = list(keys)
    if not keys:
        raise PiiKeyMissing("no PII key given")
    return Keyring(keys[0], tuple(keys[1:]))


def encrypt(plaintext: str, keys: Keyring | str | Sequence[str] | None = None) -> str:
    """Encrypt under the current key with a fresh random IV; the result is what SQL ``encrypt_pii`` returns."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = _keyring(keys).current
    header = f"{VERSION}.{key_id(key)}."
    iv = os.urandom(IV_BYTES)
    padder = padding.PKCS7(_BLOCK * 8).padder()
    padded = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(_subkey(key, "enc")), modes.CBC(iv)).encryptor()
    body = encryptor.update(padded) + encryptor.finalize()
    tag = _mac(_subkey(key, "mac"), header.encode() + iv + body)
    return header + base64.b64encode(iv + body + tag).decode("ascii")


def decrypt(ciphertext: str, keys: Keyring | str | Sequence[str] | None = None) -> str:
    """Verify and decrypt; raise PiiError for a malformed, unknown-version, unknown-key or tampered value."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    parts = ciphertext.split(".")
    if len(parts) != 3 or not re.fullmatch(r"v[0-9]+", parts[0]):
        raise PiiError("not a PII ciphertext (expected v1.<key_id>.<base64>)")
    version, wanted, payload = parts
    if version != VERSION:
        raise PiiError(f"unsupported PII ciphertext version {version}",
                       hint="Upgrade mercurio-migrate to a version that knows this format.")
    key = _keyring(keys).by_id(wanted)
    if key is None:
        raise PiiError(f"no PII key with id {wanted} is configured",
                       hint="Add the retired key to MERCURIO_PII_OLD_KEYS (comma-separated).")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise PiiError("PII ciphertext is not valid base64") from None
    if len(raw) < IV_BYTES + _BLOCK + TAG_BYTES or (len(raw) - IV_BYTES - TAG_BYTES) % _BLOCK:
        raise PiiError("PII ciphertext is truncated or malformed")
    iv, body, tag = raw[:IV_BYTES], raw[IV_BYTES:-TAG_BYTES], raw[-TAG_BYTES:]
    expected = _mac(_subkey(key, "mac"), f"{version}.{wanted}.".encode() + iv + body)
    if not hmac.compare_digest(expected, tag):
        raise PiiError("PII ciphertext failed authentication (tampered, or encrypted under another key with the same id)")
    decryptor = Cipher(algorithms.AES(_subkey(key, "enc")), modes.CBC(iv)).decryptor()
    padded = decryptor.update(body) + decryptor.finalize()
    unpadder = padding.PKCS7(_BLOCK * 8).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
        return plain.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        # unreachable unless the key itself is wrong, since the tag was verified
        raise PiiError("PII ciphertext decrypted to invalid data") from None


def fingerprint(value: str, key: str | None = None) -> str:
    """Hex HMAC-SHA256 of ``normalize(value)``: equal to SQL ``hmac_sha256(value, get_hmac_key())``."""
    if key is None:
        from mercurio_migrate import keys

        key = keys.lookup(keys.HMAC_KEY_ENV)
        if not key:
            raise PiiKeyMissing(f"no fingerprint key: set {keys.HMAC_KEY_ENV}")
    return hmac.new(key.encode("utf-8"), normalize(value).encode("utf-8"), hashlib.sha256).hexdigest()


def reencrypt(ciphertexts: Iterable[str], keys: Keyring | None = None) -> list[str]:
    """Rotate: decrypt with any configured key, encrypt again under the current one."""
    ring = _keyring(keys)
    return [encrypt(decrypt(c, ring), ring) for c in ciphertexts]
