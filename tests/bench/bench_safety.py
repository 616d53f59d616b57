"""Safety detectors: time per KB of text (target: under 1 ms per KB), whole texts and streamed in pieces.

Run: .venv/bin/python -m pytest tests/bench/bench_safety.py -s -p no:cacheprovider
"""

from __future__ import annotations

import os
import random
import time

from backend.safety.detectors import StreamScanner, scan

PROSE = (
    "The quarterly report shows revenue grew by 12.5% to 4,310,000 USD while costs fell. Our meeting on "
    "2026-11-27 at 10:30 covered the roadmap, hiring in Berlin and the new data retention policy. "
)
SENSITIVE = [
    "Contact jane.doe@example.com or +1 415 555 0132.",
    "Card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00.",
    "key AKIAIOSFODNN7EXAMPLE and token 9fK2xQ7vLm3ZpR8tW1yB4nC6dE0gH5jS2aU",
]


def corpus(kilobytes: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    parts, size = [], 0
    while size < kilobytes * 1024:
        piece = rng.choice(SENSITIVE) if rng.random() < 0.05 else PROSE
        parts.append(piece)
        size += len(piece)
    return "".join(parts)


def best_of(runs: int, action) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def test_bench_detectors_per_kilobyte() -> None:
    kilobytes = int(os.environ.get("BENCH_SAFETY_KB", "512"))
    text = corpus(kilobytes)
    findings = len(scan(text))
    whole = best_of(3, lambda: scan(text)) / kilobytes * 1000
    injection = best_of(3, lambda: scan(text, injection=True)) / kilobytes * 1000

    def streamed(piece_chars: int) -> None:
        scanner = StreamScanner()
        for index in range(0, len(text), piece_chars):
            scanner.feed(text[index : index + piece_chars])
        scanner.finish()

    per_piece = {chars: best_of(3, lambda chars=chars: streamed(chars)) / kilobytes * 1000 for chars in (40, 200, 1000)}
    print(f"\n== safety detectors over {kilobytes} KB of mixed text ({findings} findings) ==")
    print(f"whole text          : {whole:.3f} ms per KB (target < 1 ms)  {'MET' if whole < 1 else 'MISSED'}")
    print(f"with injection rules: {injection:.3f} ms per KB")
    for chars, ms in per_piece.items():
        print(f"streamed, {chars:>4}-char pieces: {ms:.3f} ms per KB")
    print(f"load average {os.getloadavg()[0]:.2f}")
    assert findings > 0
