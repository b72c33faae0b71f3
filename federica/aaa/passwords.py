"""Password hashing with scrypt (the standard library's; memory-hard, no extra dependency).

A stored hash names its parameters, `scrypt$<log2 n>$<r>$<p>$<salt>$<key>`, so they can be
raised later without invalidating existing passwords (`needs_rehash`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from federica.errors import FieldError, InvalidInput

# OWASP's scrypt floor is N=2^17, r=8, p=1 (128 MiB per hash); 2^15 (32 MiB, ~60 ms here)
# keeps logins fast on small controllers while still memory-hard. Stored per hash.
LOG2_N = 15
R = 8
P = 1
KEY_BYTES = 32
MIN_LENGTH = 10
MAX_LENGTH = 1024  # a password longer than this is an attempt to make hashing expensive


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=1 << log2_n,
        r=r,
        p=p,
        maxmem=(1 << log2_n) * r * 128 * 2,
        dklen=KEY_BYTES,
    )


def check_strength(password: str, field: str = "password") -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidInput([FieldError(field, f"at least {MIN_LENGTH} characters")])
    if len(password) > MAX_LENGTH:
        raise InvalidInput([FieldError(field, f"at most {MAX_LENGTH} characters")])


def hash_password(password: str, *, log2_n: int = LOG2_N) -> str:
    salt = secrets.token_bytes(16)
    key = _derive(password, salt, log2_n, R, P)
    return f"scrypt${log2_n}${R}${P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time comparison; False for any malformed stored value."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        scheme, log2_n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        derived = _derive(password, _unb64(salt), int(log2_n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(derived, _unb64(key))


def needs_rehash(stored: str) -> bool:
    parts = stored.split("$")
    return len(parts) != 6 or parts[1:4] != [str(LOG2_N), str(R), str(P)]


# Verified against when the username is unknown, so that a wrong username costs the same
# time as a wrong password and timing does not tell which accounts exist.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
