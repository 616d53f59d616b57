"""The master key that wraps workspace data keys, behind a KeyProvider interface so an external KMS (Vault
transit, AWS KMS) can replace the local implementation without touching callers."""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import struct
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from backend.crypto.envelope import KEY_SIZE, seal, unseal

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "master.key"
KEY_FILE_FORMAT = 1
_MAX_KEY_FILE_SIZE = 1 << 20
_ID_LABEL = b"prompt-playground/master-key-id"
_WRAP_LABEL = b"prompt-playground/wrapped-data-key/v1"
_HOW_TO_GENERATE = "generate one with `openssl rand -base64 32`"


class UnknownMasterKey(Exception):
    """The master key a data key was wrapped under is not held by this provider."""


class KeyFileError(RuntimeError):
    """The master key file is missing, unsafe or malformed (the message says which and how to fix it)."""


@runtime_checkable
class KeyProvider(Protocol):
    """What callers know of the master key. Implementations: LocalKeyProvider; a KMS adapter would wrap and
    unwrap remotely, passing `context` as the KMS's encryption context / associated data."""

    def current_key_id(self) -> str:
        """The id new wraps use; data keys wrapped under any other id are due for re-wrapping."""
        ...

    def key_ids(self) -> list[str]:
        """Every id this provider can unwrap, current first."""
        ...

    def wrap(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        """Encrypt a data key bound to `context`; returns (master key id used, wrapped bytes)."""
        ...

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        """DecryptionError if tampered or `context` differs; UnknownMasterKey if `key_id` is not held."""
        ...


def generate_master_key() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_SIZE)).decode("ascii")


def parse_master_key(value: str, *, setting: str = "PLAYGROUND_MASTER_KEY") -> bytes:
    # `setting` names where the value came from; the value itself never appears in the message, and
    # `from None` keeps the decoder's own error (which may quote input) out of the traceback.
    message = f"{setting} must be base64 of {KEY_SIZE} bytes ({_HOW_TO_GENERATE})"
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError, AttributeError):
        raise ValueError(message) from None
    if len(key) != KEY_SIZE:
        raise ValueError(message)
    return key


def master_key_id(key: bytes) -> str:
    # A keyed fingerprint: stable for the key, one-way, and useless for guessing it.
    return "local-" + hmac.new(key, _ID_LABEL, hashlib.sha256).hexdigest()[:16]


def _wrap_ad(key_id: str, context: bytes) -> bytes:
    parts = [_WRAP_LABEL, key_id.encode(), context]
    return b"".join(struct.pack(">I", len(part)) + part for part in parts)


@dataclass(frozen=True)
class _KeyRing:
    """One immutable snapshot, swapped whole, so a reader never sees a current id without its key."""

    current: str
    keys: dict[str, bytes]  # current first


@dataclass(frozen=True)
class _KeyFile:
    current: str
    keys: dict[str, bytes]  # current first
    entries: list[dict[str, str]]  # as stored, kept verbatim when the file is rewritten
    stamp: tuple[int, ...]


class LocalKeyProvider:
    """Master keys held in this process: from PLAYGROUND_MASTER_KEY (+ PLAYGROUND_MASTER_KEYS_PREVIOUS), or
    from the key file `<data_dir>/master.key`, which it can also rotate."""

    def __init__(self, current: bytes, previous: Sequence[bytes] = (), *, key_file: Path | None = None) -> None:
        for key in (current, *previous):
            if not isinstance(key, bytes) or len(key) != KEY_SIZE:
                raise ValueError(f"master keys must be {KEY_SIZE} bytes")
        keys = {master_key_id(current): current}
        for key in previous:
            keys.setdefault(master_key_id(key), key)
        self._ring = _KeyRing(master_key_id(current), keys)
        self._key_file = key_file
        self._stamp: tuple[int, ...] | None = None  # unknown: the first freshness check re-reads the file
        self._lock = threading.Lock()

    @classmethod
    def from_environment(
        cls, master_key: str | None, previous: str | None, data_dir: Path | None, *, create_file: bool
    ) -> LocalKeyProvider:
        extra = [
            parse_master_key(value, setting=f"PLAYGROUND_MASTER_KEYS_PREVIOUS (entry {n})")
            for n, value in enumerate((previous or "").split(","), start=1)
            if value.strip()
        ]
        if master_key is not None:
            return cls(parse_master_key(master_key), extra)
        if data_dir is None:
            raise KeyFileError("PLAYGROUND_MASTER_KEY is not set and there is no data directory for a master key file")
        path = Path(data_dir) / KEY_FILE_NAME
        if not path.exists():
            if not create_file:
                raise KeyFileError(
                    f"No master key: PLAYGROUND_MASTER_KEY is not set and {path} does not exist. Set "
                    f"PLAYGROUND_MASTER_KEY to base64 of {KEY_SIZE} random bytes ({_HOW_TO_GENERATE}) on every "
                    "api and worker process."
                )
            _create_key_file(path)
        loaded = _read_key_file(path)
        provider = cls(loaded.keys[loaded.current], [*loaded.keys.values(), *extra], key_file=path)
        provider._stamp = loaded.stamp
        return provider

    def current_key_id(self) -> str:
        self._refresh_if_changed(strict=False)
        return self._ring.current

    def key_ids(self) -> list[str]:
        self._refresh_if_changed(strict=False)
        return list(self._ring.keys)

    def wrap(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        if not isinstance(data_key, bytes) or len(data_key) != KEY_SIZE:
            raise ValueError(f"data keys must be {KEY_SIZE} bytes")
        # Strict: wrapping under a key that is no longer in the file would leave data nobody can read
        # after a restart, so a rotated file is picked up first and a vanished one is an error.
        self._refresh_if_changed(strict=True)
        ring = self._ring
        return ring.current, seal(ring.keys[ring.current], 0, data_key, _wrap_ad(ring.current, context))

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        key = self._ring.keys.get(key_id)
        if key is None and self._key_file is not None:
            # Another process (`playground keys rotate-master`) may have added the key since we loaded.
            self.reload()
            key = self._ring.keys.get(key_id)
        if key is None:
            raise UnknownMasterKey(f"master key {key_id[:64]!r} is not held by this process")
        return unseal(key, wrapped, _wrap_ad(key_id, context))

    def reload(self) -> None:
        """Re-read the key file. Keys only ever get added in memory here, so a process keeps unwrapping what
        it could until it restarts; the file's current key becomes ours. No-op with PLAYGROUND_MASTER_KEY."""
        if self._key_file is not None:
            self._adopt(_read_key_file(self._key_file), keep_old=True)

    def rotate_file_key(self) -> str:
        path = self._require_key_file("rotate_file_key")
        key = secrets.token_bytes(KEY_SIZE)
        key_id = master_key_id(key)
        # Read-modify-write under the lock, from the file rather than from memory, so two rotations (or a
        # rotation racing first start) cannot drop each other's keys.
        with _locked(path):
            stored = _read_key_file(path)
            _write_key_file(path, key_id, [*stored.entries, _entry(key_id, key)])
        self.reload()
        logger.info(
            "Master key rotated in %s: %s is current; re-wrap data keys, then forget the old keys", path, key_id
        )
        return key_id

    def forget_keys_except_current(self) -> None:
        path = self._require_key_file("forget_keys_except_current")
        with _locked(path):
            stored = _read_key_file(path)
            if stored.current != self._ring.current:
                # Data keys were re-wrapped under our current key; if the file moved on meanwhile, forgetting
                # now could destroy the key some of them still need.
                raise KeyFileError(
                    f"{path} was rotated by another process since this one loaded it; re-wrap the data keys "
                    "under the new current key before forgetting old keys"
                )
            _write_key_file(path, stored.current, [e for e in stored.entries if e["id"] == stored.current])
            self._adopt(_read_key_file(path), keep_old=False)
        logger.info("Old master keys removed from %s; %s is the only key", path, stored.current)

    def _require_key_file(self, operation: str) -> Path:
        if self._key_file is None:
            raise RuntimeError(
                f"{operation} needs the master key file; with PLAYGROUND_MASTER_KEY, rotate by setting a new key and "
                "moving the old one to PLAYGROUND_MASTER_KEYS_PREVIOUS on every process"
            )
        return self._key_file

    def _refresh_if_changed(self, *, strict: bool) -> None:
        # One stat() per call: the file is replaced atomically, so a new inode/mtime means a new version.
        if self._key_file is None:
            return
        try:
            stamp = _stamp(os.stat(self._key_file))
        except FileNotFoundError:
            if strict:
                raise KeyFileError(
                    f"master key file {self._key_file} has disappeared; restore it from backup"
                ) from None
            return
        if stamp != self._stamp:
            self.reload()

    def _adopt(self, loaded: _KeyFile, *, keep_old: bool) -> None:
        with self._lock:
            keys = dict(loaded.keys)
            if keep_old:
                keys.update((kid, key) for kid, key in self._ring.keys.items() if kid not in keys)
            if loaded.current != self._ring.current:
                logger.info("Master key file %s changed: %s is now current", self._key_file, loaded.current)
            self._ring = _KeyRing(loaded.current, keys)
            self._stamp = loaded.stamp


def _entry(key_id: str, key: bytes) -> dict[str, str]:
    return {
        "id": key_id,
        "key": base64.b64encode(key).decode("ascii"),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _stamp(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # An advisory lock beside the key file serialises creators and rotators across processes (api and
    # worker often start together on one data dir); the kernel releases it if the holder dies.
    fd = os.open(path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(path):
        if path.exists():  # another process created it while we waited for the lock
            return
        key = secrets.token_bytes(KEY_SIZE)
        key_id = master_key_id(key)
        _write_key_file(path, key_id, [_entry(key_id, key)])
    logger.warning(
        "Created a new master key %s in %s. Back this file up now and keep it secret: without it every "
        "workspace's data is unreadable. To manage the key yourself, set PLAYGROUND_MASTER_KEY instead.",
        key_id,
        path,
    )


def _write_key_file(path: Path, current: str, entries: list[dict[str, str]]) -> None:
    data = (json.dumps({"format": KEY_FILE_FORMAT, "current": current, "keys": entries}, indent=2) + "\n").encode()
    # Owner-only from the first byte (O_EXCL + 0o600, never chmod after the fact), fully written and synced
    # before the rename, so readers see the old file or the new one, never a partial or readable-by-all one.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable: losing the new key file in a crash would lose the keys in it.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _read_key_file(path: Path) -> _KeyFile:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyFileError(f"master key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"cannot open master key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        # fstat on the open file, not stat on the path, so the checked file is the one we read.
        st = os.fstat(handle.fileno())
        if st.st_mode & 0o077:
            raise KeyFileError(
                f"Permissions {st.st_mode & 0o777:#o} for master key file {path} are too open: it must be "
                f"readable by its owner only (chmod 600 {path})"
            )
        raw = handle.read(_MAX_KEY_FILE_SIZE + 1)
    current, keys, entries = _parse_key_file(raw, path)
    return _KeyFile(current, keys, entries, _stamp(st))


def _parse_key_file(raw: bytes, path: Path) -> tuple[str, dict[str, bytes], list[dict[str, str]]]:
    def malformed(reason: str) -> KeyFileError:
        return KeyFileError(f"master key file {path} is malformed: {reason}")

    if len(raw) > _MAX_KEY_FILE_SIZE:
        raise malformed("too large")
    try:
        doc: Any = json.loads(raw)
    except ValueError:
        raise malformed("not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != KEY_FILE_FORMAT:
        raise malformed(f'expected an object with "format": {KEY_FILE_FORMAT}')
    current, items = doc.get("current"), doc.get("keys")
    if not isinstance(current, str) or not isinstance(items, list) or not items:
        raise malformed('"current" must be a key id and "keys" a non-empty list')
    keys: dict[str, bytes] = {}
    entries: list[dict[str, str]] = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in ("id", "key", "created_at")):
            raise malformed(f'key {n} needs string "id", "key" and "created_at"')
        try:
            key = parse_master_key(item["key"], setting=f"key {n}")
        except ValueError as exc:
            raise malformed(str(exc)) from None
        if master_key_id(key) != item["id"]:
            raise malformed(f"key {n}: id does not match the key")
        if item["id"] in keys:
            raise malformed(f"key {n}: duplicate id")
        keys[item["id"]] = key
        entries.append({"id": item["id"], "key": item["key"], "created_at": item["created_at"]})
    if current not in keys:
        raise malformed('"current" names no key in "keys"')
    ordered = {current: keys[current], **{kid: key for kid, key in keys.items() if kid != current}}
    return current, ordered, entries
