"""Micro-benchmark of the crypto core: sealing a 2 KB field and wrapping a data key (figures, no asserts)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from backend.crypto.envelope import associated_data, new_data_key, seal, unseal
from backend.crypto.master import LocalKeyProvider, generate_master_key, parse_master_key

N = 20_000


def _time(operation: Callable[[], object], n: int = N) -> float:
    """Seconds per call, best of three runs so a stray scheduler hiccup does not skew the figure."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            operation()
        best = min(best, (time.perf_counter() - start) / n)
    return best


def _report(name: str, seconds: float) -> None:
    print(f"{name:<28} {seconds * 1e6:8.2f} µs/op {1 / seconds:12,.0f} ops/s")


def test_bench_seal_unseal_2kb_field() -> None:
    key = new_data_key()
    ad = associated_data(uuid.uuid4(), "prompt_version", "messages", uuid.uuid4())
    plaintext = os.urandom(2048)
    sealed = seal(key, 1, plaintext, ad)

    seal_s = _time(lambda: seal(key, 1, plaintext, ad))
    unseal_s = _time(lambda: unseal(key, sealed, ad))
    pair_s = _time(lambda: unseal(key, seal(key, 1, plaintext, ad), ad))
    print(f"\nfield of 2 KB, N={N:,} (best of 3)")
    _report("seal", seal_s)
    _report("unseal", unseal_s)
    _report("seal + unseal", pair_s)
    _report("associated_data", _time(lambda: associated_data(uuid.UUID(int=1), "t", "c", 1)))


def test_bench_wrap_unwrap_data_key(tmp_path: Path) -> None:
    data_key = new_data_key()
    context = f"workspace:{uuid.uuid4()}:v1".encode()
    env_mode = LocalKeyProvider(parse_master_key(generate_master_key()))
    # Key-file mode stats the file on every wrap to pick up a rotation made by another process.
    file_mode = LocalKeyProvider.from_environment(None, None, tmp_path, create_file=True)

    print(f"\ndata key wrap, N={N:,} (best of 3)")
    for mode, provider in (("env key", env_mode), ("key file", file_mode)):
        key_id, wrapped = provider.wrap(data_key, context)
        _report(f"wrap ({mode})", _time(lambda p=provider: p.wrap(data_key, context)))
        _report(f"unwrap ({mode})", _time(lambda p=provider, k=key_id, w=wrapped: p.unwrap(k, w, context)))
