"""The pure crypto core: field sealing with workspace data keys and the local master-key provider."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backend.crypto.envelope import (
    FORMAT_VERSION,
    HEADER_SIZE,
    DecryptionError,
    associated_data,
    key_version_of,
    new_data_key,
    seal,
    unseal,
)
from backend.crypto.master import (
    KeyFileError,
    KeyProvider,
    LocalKeyProvider,
    UnknownMasterKey,
    generate_master_key,
    master_key_id,
    parse_master_key,
)

WS = uuid.UUID("11111111-1111-4111-8111-111111111111")
OTHER_WS = uuid.UUID("22222222-2222-4222-8222-222222222222")
ROW = uuid.UUID("33333333-3333-4333-8333-333333333333")
AD = associated_data(WS, "prompt_version", "messages", ROW)


# --- envelope ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plaintext",
    [b"", b"x", os.urandom(2048), os.urandom(1 << 20), "héllo wörld · 日本語 · 🔐".encode()],
    ids=["empty", "1-byte", "2KB", "1MB", "unicode"],
)
def test_round_trip(plaintext: bytes) -> None:
    key = new_data_key()
    sealed = seal(key, 3, plaintext, AD)
    assert unseal(key, sealed, AD) == plaintext
    assert len(sealed) == HEADER_SIZE + len(plaintext) + 16


def test_layout_is_version_key_version_salt_ciphertext() -> None:
    sealed = seal(new_data_key(), 0x01020304, b"abc", AD)
    assert sealed[0] == FORMAT_VERSION == 1
    assert sealed[1:5] == bytes([1, 2, 3, 4])
    assert HEADER_SIZE == 37


def test_new_data_keys_are_32_random_bytes() -> None:
    a, b = new_data_key(), new_data_key()
    assert len(a) == len(b) == 32
    assert a != b


def test_two_seals_of_the_same_plaintext_differ() -> None:
    key = new_data_key()
    first, second = seal(key, 1, b"same", AD), seal(key, 1, b"same", AD)
    assert first != second
    assert first[5:HEADER_SIZE] != second[5:HEADER_SIZE]  # fresh salt, hence a fresh subkey
    assert unseal(key, first, AD) == unseal(key, second, AD) == b"same"


@pytest.mark.parametrize("version", [0, 1, 7, 2**32 - 1])
def test_key_version_of_reads_the_header(version: int) -> None:
    assert key_version_of(seal(new_data_key(), version, b"payload", AD)) == version


@pytest.mark.parametrize("blob", [b"", b"\x01", b"\x01" + bytes(HEADER_SIZE + 14)], ids=["empty", "1", "short"])
def test_key_version_of_rejects_malformed(blob: bytes) -> None:
    with pytest.raises(DecryptionError):
        key_version_of(blob)


def test_key_version_of_rejects_unknown_format() -> None:
    sealed = bytearray(seal(new_data_key(), 1, b"x", AD))
    sealed[0] = 2
    with pytest.raises(DecryptionError):
        key_version_of(bytes(sealed))


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_flipping_any_single_byte_fails(mask: int) -> None:
    key = new_data_key()
    sealed = seal(key, 5, b"secret", AD)
    for position in range(len(sealed)):
        tampered = bytearray(sealed)
        tampered[position] ^= mask
        with pytest.raises(DecryptionError):
            unseal(key, bytes(tampered), AD)


def test_truncation_and_extension_fail() -> None:
    key = new_data_key()
    sealed = seal(key, 5, b"secret text", AD)
    for length in range(len(sealed)):
        with pytest.raises(DecryptionError):
            unseal(key, sealed[:length], AD)
    with pytest.raises(DecryptionError):
        unseal(key, sealed + b"\x00", AD)


@pytest.mark.parametrize(
    "other_ad",
    [
        associated_data(OTHER_WS, "prompt_version", "messages", ROW),
        associated_data(WS, "run", "messages", ROW),
        associated_data(WS, "prompt_version", "system_prompt", ROW),
        associated_data(WS, "prompt_version", "messages", uuid.uuid4()),
        b"",
    ],
    ids=["other-workspace", "other-table", "other-column", "other-row", "empty"],
)
def test_wrong_associated_data_fails(other_ad: bytes) -> None:
    key = new_data_key()
    sealed = seal(key, 1, b"secret", AD)
    with pytest.raises(DecryptionError):
        unseal(key, sealed, other_ad)


def test_other_data_key_fails() -> None:
    sealed = seal(new_data_key(), 1, b"secret", AD)
    with pytest.raises(DecryptionError):
        unseal(new_data_key(), sealed, AD)


@pytest.mark.parametrize("version_byte", [0x00, 0x02, 0xFF])
def test_changed_header_version_fails(version_byte: int) -> None:
    key = new_data_key()
    sealed = bytearray(seal(key, 1, b"secret", AD))
    sealed[0] = version_byte
    with pytest.raises(DecryptionError):
        unseal(key, bytes(sealed), AD)


def test_key_version_is_authenticated() -> None:
    key = new_data_key()
    sealed = bytearray(seal(key, 1, b"secret", AD))
    sealed[1:5] = (2).to_bytes(4, "big")  # claim another key version, same key: still refused
    with pytest.raises(DecryptionError):
        unseal(key, bytes(sealed), AD)


def test_decryption_error_reveals_neither_key_nor_plaintext() -> None:
    key = new_data_key()
    sealed = seal(key, 1, b"top secret plaintext", AD)
    with pytest.raises(DecryptionError) as caught:
        unseal(key, sealed[:-1] + bytes([sealed[-1] ^ 1]), AD)
    text = str(caught.value)
    assert key.hex() not in text and "top secret" not in text
    assert caught.value.__cause__ is None


def test_associated_data_is_unambiguous() -> None:
    assert associated_data(WS, "ab", "c", 1) != associated_data(WS, "a", "bc", 1)
    assert associated_data(WS, "t", "ab", "c") != associated_data(WS, "t", "a", "bc")
    assert associated_data(WS, "t", "c", 12) != associated_data(WS, "t", "c1", 2)
    assert associated_data(WS, "t", "c", 1) != associated_data(OTHER_WS, "t", "c", 1)
    assert associated_data(WS, "t", "c", 1) == associated_data(WS, "t", "c", 1)


def test_associated_data_row_ids_use_their_canonical_text() -> None:
    assert associated_data(WS, "t", "c", ROW) == associated_data(WS, "t", "c", str(ROW))
    assert associated_data(WS, "t", "c", 42) == associated_data(WS, "t", "c", "42")
    for bad in (True, 1.5, b"bytes", None):
        with pytest.raises(TypeError):
            associated_data(WS, "t", "c", bad)
    with pytest.raises(TypeError):
        associated_data(str(WS), "t", "c", 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_invalid_data_key_sizes_are_refused(size: int) -> None:
    good = seal(new_data_key(), 1, b"x", AD)
    with pytest.raises(ValueError, match="32 bytes"):
        seal(os.urandom(size), 1, b"x", AD)
    with pytest.raises(ValueError, match="32 bytes"):
        unseal(os.urandom(size), good, AD)


@pytest.mark.parametrize("version", [-1, 2**32, 2**40, True])
def test_key_version_outside_uint32_is_refused(version: int) -> None:
    with pytest.raises(ValueError):
        seal(new_data_key(), version, b"x", AD)


# --- master key -------------------------------------------------------------------------------------

CONTEXT = f"workspace:{WS}:v1".encode()


@pytest.fixture
def provider() -> LocalKeyProvider:
    return LocalKeyProvider(parse_master_key(generate_master_key()))


def test_local_provider_implements_the_interface(provider: LocalKeyProvider) -> None:
    assert isinstance(provider, KeyProvider)


def test_wrap_unwrap_round_trip(provider: LocalKeyProvider) -> None:
    data_key = new_data_key()
    key_id, wrapped = provider.wrap(data_key, CONTEXT)
    assert key_id == provider.current_key_id()
    assert data_key not in wrapped
    assert provider.unwrap(key_id, wrapped, CONTEXT) == data_key


@pytest.mark.parametrize(
    "context", [f"workspace:{OTHER_WS}:v1".encode(), f"workspace:{WS}:v2".encode(), b""], ids=["ws", "version", "empty"]
)
def test_unwrap_with_wrong_context_fails(provider: LocalKeyProvider, context: bytes) -> None:
    key_id, wrapped = provider.wrap(new_data_key(), CONTEXT)
    with pytest.raises(DecryptionError):
        provider.unwrap(key_id, wrapped, context)


def test_unwrap_of_tampered_wrapped_key_fails(provider: LocalKeyProvider) -> None:
    key_id, wrapped = provider.wrap(new_data_key(), CONTEXT)
    with pytest.raises(DecryptionError):
        provider.unwrap(key_id, wrapped[:-1] + bytes([wrapped[-1] ^ 1]), CONTEXT)


def test_unwrap_with_unknown_key_id_raises_unknown_master_key(provider: LocalKeyProvider) -> None:
    _, wrapped = provider.wrap(new_data_key(), CONTEXT)
    with pytest.raises(UnknownMasterKey):
        provider.unwrap("local-0000000000000000", wrapped, CONTEXT)


def test_wrap_refuses_a_data_key_of_the_wrong_size(provider: LocalKeyProvider) -> None:
    with pytest.raises(ValueError):
        provider.wrap(os.urandom(16), CONTEXT)


def test_previous_keys_unwrap_but_wrap_uses_current() -> None:
    old, new = parse_master_key(generate_master_key()), parse_master_key(generate_master_key())
    old_id, wrapped_old = LocalKeyProvider(old).wrap(b"k" * 32, CONTEXT)
    rotated = LocalKeyProvider(new, [old])
    assert rotated.unwrap(old_id, wrapped_old, CONTEXT) == b"k" * 32
    new_id, _ = rotated.wrap(b"k" * 32, CONTEXT)
    assert new_id == master_key_id(new) == rotated.current_key_id() != old_id
    assert rotated.key_ids() == [new_id, old_id]


def test_a_wrapped_key_does_not_open_under_another_master_key_id() -> None:
    old, new = parse_master_key(generate_master_key()), parse_master_key(generate_master_key())
    both = LocalKeyProvider(new, [old])
    _, wrapped = both.wrap(b"k" * 32, CONTEXT)
    with pytest.raises(DecryptionError):
        both.unwrap(master_key_id(old), wrapped, CONTEXT)


@pytest.mark.parametrize(
    "value",
    ["not base64 at all!!", base64.b64encode(b"s" * 16).decode(), base64.b64encode(b"s" * 33).decode(), ""],
    ids=["garbage", "16-bytes", "33-bytes", "empty"],
)
def test_parse_master_key_errors_do_not_echo_the_value(value: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_master_key(value)
    message = str(caught.value)
    assert "PLAYGROUND_MASTER_KEY must be base64 of 32 bytes" in message
    if value:
        assert value not in message
    # nor chain the decoder's error, which could quote the input
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_parse_master_key_accepts_surrounding_whitespace() -> None:
    value = generate_master_key()
    assert parse_master_key(f"  {value}\n") == base64.b64decode(value)
    assert len(base64.b64decode(value)) == 32


def test_master_key_id_is_a_stable_fingerprint() -> None:
    value = generate_master_key()
    key = parse_master_key(value)
    key_id = master_key_id(key)
    assert key_id == master_key_id(bytes(key))
    assert key_id.startswith("local-") and len(key_id) == 22
    int(key_id.removeprefix("local-"), 16)
    assert value not in key_id and key.hex()[:16] not in key_id
    assert key_id != master_key_id(parse_master_key(generate_master_key()))


def test_from_environment_with_env_key(tmp_path: Path) -> None:
    value = generate_master_key()
    provider = LocalKeyProvider.from_environment(value, None, tmp_path, create_file=True)
    assert provider.current_key_id() == master_key_id(parse_master_key(value))
    assert list(tmp_path.iterdir()) == []  # the env key wins; no key file is created
    with pytest.raises(RuntimeError, match="PLAYGROUND_MASTER_KEYS_PREVIOUS"):
        provider.rotate_file_key()


def test_from_environment_with_previous_keys() -> None:
    old1, old2, current = generate_master_key(), generate_master_key(), generate_master_key()
    old_id, wrapped = LocalKeyProvider(parse_master_key(old2)).wrap(b"d" * 32, CONTEXT)
    provider = LocalKeyProvider.from_environment(current, f" {old1} ,{old2},", None, create_file=False)
    assert len(provider.key_ids()) == 3
    assert provider.unwrap(old_id, wrapped, CONTEXT) == b"d" * 32
    with pytest.raises(ValueError, match="PLAYGROUND_MASTER_KEYS_PREVIOUS") as caught:
        LocalKeyProvider.from_environment(current, f"{old1},oops", None, create_file=False)
    assert old1 not in str(caught.value)


def test_from_environment_creates_an_owner_only_key_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="backend.crypto.master")
    provider = LocalKeyProvider.from_environment(None, None, tmp_path / "data", create_file=True)
    key_file = tmp_path / "data" / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    doc = json.loads(key_file.read_text())
    assert doc["format"] == 1 and doc["current"] == provider.current_key_id()
    [entry] = doc["keys"]
    assert entry["id"] == master_key_id(base64.b64decode(entry["key"])) and entry["created_at"]
    assert not [p for p in key_file.parent.iterdir() if p.name.endswith(".tmp")]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "without it every workspace's data is unreadable" in warnings[0].getMessage()
    assert str(key_file) in warnings[0].getMessage()
    assert entry["key"] not in caplog.text


def test_key_file_is_reused_on_the_next_load(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = LocalKeyProvider.from_environment(None, None, tmp_path, create_file=True)
    caplog.clear()
    second = LocalKeyProvider.from_environment(None, None, tmp_path, create_file=True)
    third = LocalKeyProvider.from_environment(None, "", tmp_path, create_file=False)
    assert first.current_key_id() == second.current_key_id() == third.current_key_id()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    key_id, wrapped = first.wrap(b"z" * 32, CONTEXT)
    assert third.unwrap(key_id, wrapped, CONTEXT) == b"z" * 32


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    ids: list[str] = []

    def start() -> None:
        barrier.wait()
        ids.append(LocalKeyProvider.from_environment(None, None, tmp_path, create_file=True).current_key_id())

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 8 and len(set(ids)) == 1


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_refuses_a_key_file_readable_by_others(tmp_path: Path, mode: int) -> None:
    LocalKeyProvider.from_environment(None, None, tmp_path, create_file=True)
    (tmp_path / "master.key").chmod(mode)
    with pytest.raises(KeyFileError, match="too open") as caught:
        LocalKeyProvider.from_environment(None, None, tmp_path, create_file=True)
    assert "chmod 600" in str(caught.value)


def test_refuses_a_missing_key_file_without_create(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="PLAYGROUND_MASTER_KEY"):
        LocalKeyProvider.from_environment(None, None, tmp_path, create_file=False)
    assert not (tmp_path / "master.key").exists()
    with pytest.raises(RuntimeError, match="PLAYGROUND_MASTER_KEY"):
        LocalKeyProvider.from_environment(None, None, None, create_file=True)


def _write_owner_only(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda doc: "{not json",
        lambda doc: json.dumps({**doc, "format": 2}),
        lambda doc: json.dumps({**doc, "current": "local-ffffffffffffffff"}),
        lambda doc: json.dumps({**doc, "keys": []}),
        lambda doc: json.dumps({**doc, "keys": [{**doc["keys"][0], "id": "local-0000000000000000"}]}),
        lambda doc: json.dumps({**doc, "keys": [{**doc["keys"][0], "key": "c2hvcnQ="}]}),
        lambda doc: json.dumps({**doc, "keys": [doc["keys"][0], doc["keys"][0]]}),
        lambda doc: json.dumps([doc]),
    ],
    ids=["not-json", "format", "current", "no-keys", "id-mismatch", "short-key", "duplicate", "not-object"],
)
def test_refuses_a_malformed_key_file(tmp_path: Path, mutate: Callable[[dict[str, Any]], str]) -> None:
    LocalKeyProvider.from_environment(None, None, tmp_path, create_file=True)
    key_file = tmp_path / "master.key"
    doc = json.loads(key_file.read_text())
    _write_owner_only(key_file, mutate(doc))
    with pytest.raises(KeyFileError, match="malformed") as caught:
        LocalKeyProvider.from_environment(None, None, tmp_path, create_file=True)
    assert doc["keys"][0]["key"] not in str(caught.value)


def test_rotation_is_seen_by_a_process_that_loaded_the_file_before(tmp_path: Path) -> None:
    rotator = LocalKeyProvider.from_environment(None, None, tmp_path, create_file=True)
    other_process = LocalKeyProvider.from_environment(None, None, tmp_path, create_file=False)
    old_id = rotator.current_key_id()
    old_wrap = rotator.wrap(b"o" * 32, CONTEXT)

    new_id = rotator.rotate_file_key()
    assert new_id != old_id
    assert rotator.current_key_id() == new_id
    assert rotator.key_ids() == [new_id, old_id]
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600

    key_id, wrapped = rotator.wrap(b"n" * 32, CONTEXT)
    assert key_id == new_id
    assert other_process.unwrap(key_id, wrapped, CONTEXT) == b"n" * 32  # reloaded on the unknown id
    assert other_process.unwrap(*old_wrap, CONTEXT) == b"o" * 32  # old key still in the file


def test_a_stale_process_wraps_under_the_rotated_key(tmp_path: Path) -> None:
    rotator = LocalKeyProvider.from_environment(None, None, tmp_path, create_file=True)
    stale = LocalKeyProvider.from_environment(None, None, tmp_path, create_file=False)
    new_id = rotator.rotate_file_key()
    assert stale.wrap(b"s" * 32, CONTEXT)[0] == new_id
    assert stale.current_key_id() == new_id


def test_reload_picks_up_a_rotation(tmp_path: Path) -> None:
    rotator = LocalKeyProvider.from_environment(None, None, tmp_path, create_file=True)
    other = LocalKeyProvider.from_environment(None, None, tmp_path, create_file=False)
    new_id = rotator.rotate_file_key()
    other.reload()
    assert other.key_ids()[0] == new_id and len(other.key_ids()) == 2


def test_forget_keys_except_current_leaves_only_one_key(tmp_path: Path) -> None:
    provider = LocalKeyProvider.from_environment(None, None, tmp_path, create_file=True)
    old_id, old_wrapped = provider.wrap(b"o" * 32, CONTEXT)
    provider.rotate_file_key()
    new_id = provider.rotate_file_key()
    assert len(json.loads((tmp_path / "master.key").read_text())["keys"]) == 3

    provider.forget_keys_except_current()
    doc = json.loads((tmp_path / "master.key").read_text())
    assert doc["current"] == new_id and [k["id"] for k in doc["keys"]] == [new_id]
    assert provider.key_ids() == [new_id]
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600
    fresh = LocalKeyProvider.from_environment(None, None, tmp_path, create_file=False)
    with pytest.raises(UnknownMasterKey):
        fresh.unwrap(old_id, old_wrapped, CONTEXT)


def test_forget_refuses_when_another_process_rotated_meanwhile(tmp_path: Path) -> None:
    first = LocalKeyProvider.from_environment(None, None, tmp_path, create_file=True)
    second = LocalKeyProvider.from_environment(None, None, tmp_path, create_file=False)
    first.rotate_file_key()
    second.rotate_file_key()
    with pytest.raises(KeyFileError, match="rotated by another process"):
        first.forget_keys_except_current()
    assert len(json.loads((tmp_path / "master.key").read_text())["keys"]) == 3


def test_wrap_fails_loudly_when_the_key_file_disappears(tmp_path: Path) -> None:
    provider = LocalKeyProvider.from_environment(None, None, tmp_path, create_file=True)
    key_id, wrapped = provider.wrap(b"w" * 32, CONTEXT)
    (tmp_path / "master.key").unlink()
    with pytest.raises(KeyFileError, match="disappeared"):
        provider.wrap(b"w" * 32, CONTEXT)
    assert provider.unwrap(key_id, wrapped, CONTEXT) == b"w" * 32  # keys in memory still read
