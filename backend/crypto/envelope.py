"""Seals and unseals one field with a workspace data key: AES-256-GCM under a per-record HKDF subkey,
bound by associated data to the workspace, table, column and row it belongs to."""

from __future__ import annotations

import os
import struct
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT_VERSION = 1
KEY_SIZE = 32
SALT_SIZE = 32
TAG_SIZE = 16
MAX_KEY_VERSION = 0xFFFF_FFFF

_HEADER = struct.Struct(">BI")  # format version, key version
HEADER_SIZE = _HEADER.size + SALT_SIZE  # 37
_SUBKEY_INFO = b"prompt-playground/field/v1"
_AD_LABEL = b"prompt-playground/field-ad/v1"
# Each subkey encrypts exactly one message, so a constant nonce never repeats under any key.
_NONCE = bytes(12)


class DecryptionError(Exception):
    """A ciphertext could not be opened: tampered, truncated, wrong key, wrong associated data or unknown
    format. Deliberately says nothing more, so callers cannot leak key material or plaintext through it."""


def new_data_key() -> bytes:
    return os.urandom(KEY_SIZE)


def associated_data(workspace_id: uuid.UUID, table: str, column: str, row_id: object) -> bytes:
    # Every field is length-prefixed, so no two different tuples can encode to the same bytes
    # (("ab", "c") and ("a", "bc") differ), and the label keeps this encoding apart from any other use.
    if not isinstance(workspace_id, uuid.UUID):
        raise TypeError("workspace_id must be a uuid.UUID")
    parts = [_AD_LABEL, workspace_id.bytes, table.encode(), column.encode(), _row_id_bytes(row_id)]
    return b"".join(struct.pack(">I", len(part)) + part for part in parts)


def _row_id_bytes(row_id: object) -> bytes:
    # Row ids are written in their canonical text form, so a UUID column and its str() give the same AD;
    # anything whose text form is not canonical (floats, bools, arbitrary objects) is refused.
    if isinstance(row_id, bool):
        raise TypeError("row_id must be a UUID, int or str")
    if isinstance(row_id, uuid.UUID | int):
        return str(row_id).encode()
    if isinstance(row_id, str):
        return row_id.encode()
    raise TypeError("row_id must be a UUID, int or str")


def _check_key(data_key: bytes) -> None:
    if not isinstance(data_key, bytes | bytearray) or len(data_key) != KEY_SIZE:
        raise ValueError(f"data key must be {KEY_SIZE} bytes")


def _subkey(data_key: bytes, salt: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=_SUBKEY_INFO)
    return AESGCM(hkdf.derive(bytes(data_key)))


def seal(data_key: bytes, key_version: int, plaintext: bytes, ad: bytes) -> bytes:
    _check_key(data_key)
    if isinstance(key_version, bool) or not isinstance(key_version, int) or not 0 <= key_version <= MAX_KEY_VERSION:
        raise ValueError("key_version must be an integer in the uint32 range")
    # A fresh 256-bit salt gives every record its own subkey, which is what makes the fixed nonce safe:
    # nonce reuse would need two records to draw the same salt (probability ~2^-256 per pair), and there
    # is no counter to persist or lose, unlike random 96-bit GCM nonces (birthday bound near 2^32 messages).
    header = _HEADER.pack(FORMAT_VERSION, key_version) + os.urandom(SALT_SIZE)
    # The header is part of the associated data, so neither the key version nor the salt can be swapped.
    return header + _subkey(data_key, header[_HEADER.size :]).encrypt(_NONCE, plaintext, header + ad)


def _split(ciphertext: bytes) -> tuple[bytes, int, bytes, bytes]:
    if not isinstance(ciphertext, bytes | bytearray) or len(ciphertext) < HEADER_SIZE + TAG_SIZE:
        raise DecryptionError("ciphertext is truncated or malformed")
    version, key_version = _HEADER.unpack_from(ciphertext)
    if version != FORMAT_VERSION:
        raise DecryptionError("unknown ciphertext format")
    header = bytes(ciphertext[:HEADER_SIZE])
    return header, key_version, header[_HEADER.size :], bytes(ciphertext[HEADER_SIZE:])


def unseal(data_key: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    _check_key(data_key)
    header, _, salt, body = _split(ciphertext)
    try:
        return _subkey(data_key, salt).decrypt(_NONCE, body, header + ad)
    except InvalidTag:
        # InvalidTag carries no detail worth chaining; one message covers every way authentication fails.
        raise DecryptionError("ciphertext failed authentication (tampered, wrong key or wrong context)") from None


def key_version_of(ciphertext: bytes) -> int:
    """Which data key version sealed this ciphertext, read from the header without decrypting (unauthenticated
    until unseal succeeds)."""
    return _split(ciphertext)[1]
