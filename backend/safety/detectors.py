"""What the safety checks look for: personal data, secrets, prompt injection. Pure functions over text.

Each detector reports exact character offsets, so a streamed output can be checked a piece at a time and a
flag can point at what it found; checksums (Luhn, IBAN mod 97) and word boundaries keep false positives
down: a 16-digit order number that fails Luhn is not a card.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

KINDS = {
    "pii": ("email", "phone", "credit_card", "iban", "us_ssn"),
    "secret": ("anthropic_key", "openai_key", "aws_access_key", "private_key", "jwt", "high_entropy"),
    "injection": ("injection",),
    "refusal": ("refusal",),
}
KIND_OF = {detector: kind for kind, detectors in KINDS.items() for detector in detectors}
# Streamed text is re-scanned from this far before the new piece (and back to a whitespace), so a match
# split across pieces is seen whole: the longest spaced pattern (an injection phrase) is shorter.
OVERLAP = 96
# A finding is complete once this many characters follow it: no pattern looks further ahead, or extends a
# match by more (an IBAN's next group, a phone number's next digits, a dot joining a JWT's parts).
SETTLE = 8


@dataclass(frozen=True)
class Finding:
    kind: str
    detector: str
    start: int
    end: int


_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,24}\b"
)
# Phone numbers: an international +CC form, or a grouped national form with at least 10 digits. Plain runs of
# digits (ids, amounts) and dates do not match: the groups need separators.
_PHONE = re.compile(
    r"(?<![\w+/.-])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{2,4}){2,4}"
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?![\w/-]|\.\d)"
)
_CARD = re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
_ANTHROPIC_KEY = re.compile(r"(?<![\w-])sk-ant-[a-z]{3,6}\d{2}-[A-Za-z0-9_-]{32,}")
_OPENAI_KEY = re.compile(r"(?<![\w-])sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}")
_AWS_KEY = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])")
# The BEGIN line is what is found (a streamed block is flagged as soon as its header is out).
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_JWT = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
# A dot joins tokens (the parts of a JWT are not three tokens), but may end a sentence after one.
_TOKEN = re.compile(r"(?<![A-Za-z0-9+/=_-])(?<![A-Za-z0-9]\.)[A-Za-z0-9+/_-]{32,}={0,2}(?!\.?[A-Za-z0-9+/=_-])")
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+)*(?:previous|prior|above|earlier|"
    r"preceding|system)\s+(?:instructions?|prompts?|rules|directions|messages?)"
    r"|\byou\s+are\s+now\s+(?:in\s+)?(?:developer|dan|jailbreak|unrestricted|god)\s*mode"
    r"|\b(?:reveal|print|show|repeat|output)\s+(?:me\s+)?(?:your|the)\s+(?:system\s+prompt|hidden\s+instructions|"
    r"initial\s+instructions)"
    r"|<\|im_start\|>|<\|system\|>|\[/?INST\]|^\s*#{2,}\s*(?:system|instructions?)\s*:?\s*$"
    r"|\bnew\s+instructions?\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20, "ES": 24,
    "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "TR": 26, "AE": 23, "SA": 24, "IL": 23, "BR": 29, "QA": 29, "UA": 29,
}


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_issuer_ok(digits: str) -> bool:
    """Lengths and prefixes of the card networks: Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay."""
    n = len(digits)
    if digits[0] == "4":
        return n in (13, 16, 19)
    two, four, six = int(digits[:2]), int(digits[:4]), int(digits[:6])
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16
    if two in (34, 37):
        return n == 15
    if four == 6011 or two == 65 or 644 <= int(digits[:3]) <= 649 or 622126 <= six <= 622925:
        return 16 <= n <= 19
    if 3528 <= four <= 3589:
        return 16 <= n <= 19
    if two in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:
        return 14 <= n <= 19
    if two == 62:
        return 16 <= n <= 19
    return False


def iban_ok(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    expected = _IBAN_LENGTHS.get(compact[:2])
    if expected is None or len(compact) != expected:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _entropy(text: str) -> float:
    counts = Counter(text)
    length = len(text)
    return -sum(count / length * math.log2(count / length) for count in counts.values())


def _high_entropy(token: str) -> bool:
    """A random-looking credential: mixed letters and digits, many distinct characters."""
    core = token.rstrip("=")
    if not (any(c.isdigit() for c in core) and any(c.isupper() for c in core) and any(c.islower() for c in core)):
        if not re.fullmatch(r"[0-9a-f]{32,}", core):
            return False
        return _entropy(core) >= 3.0  # hex: at most 4 bits a character
    return _entropy(core) >= 4.2


def scan(text: str, *, injection: bool = False) -> list[Finding]:
    """Every finding in `text`, in order of position; overlapping weaker findings are dropped (a key is not
    also reported as a high-entropy token, a card not also as a phone number)."""
    found: list[Finding] = []
    found += _simple(_ANTHROPIC_KEY, "anthropic_key", text)
    found += _simple(_OPENAI_KEY, "openai_key", text)
    found += _simple(_AWS_KEY, "aws_access_key", text)
    found += _simple(_PRIVATE_KEY, "private_key", text)
    found += _simple(_JWT, "jwt", text)
    found += _simple(_EMAIL, "email", text)
    found += [f for f in _simple(_CARD, "credit_card", text) if _card_ok(text[f.start : f.end])]
    found += [f for f in _simple(_IBAN, "iban", text) if iban_ok(text[f.start : f.end])]
    found += _simple(_SSN, "us_ssn", text)
    found += [f for f in _simple(_PHONE, "phone", text) if 10 <= sum(c.isdigit() for c in text[f.start : f.end]) <= 15]
    found += [f for f in _simple(_TOKEN, "high_entropy", text) if _high_entropy(text[f.start : f.end])]
    if injection:
        found += _simple(_INJECTION, "injection", text)
    return _without_overlaps(found)


def _simple(pattern: re.Pattern[str], detector: str, text: str) -> Iterator[Finding]:
    kind = KIND_OF[detector]
    return (Finding(kind, detector, m.start(), m.end()) for m in pattern.finditer(text))


def _card_ok(candidate: str) -> bool:
    digits = candidate.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and _card_issuer_ok(digits) and luhn_ok(digits)


_PRIORITY = {name: rank for rank, name in enumerate(
    ("private_key", "anthropic_key", "openai_key", "aws_access_key", "jwt", "credit_card", "iban", "us_ssn",
     "email", "injection", "phone", "high_entropy")
)}


def _without_overlaps(found: list[Finding]) -> list[Finding]:
    kept: list[Finding] = []
    for finding in sorted(found, key=lambda f: (_PRIORITY[f.detector], f.start)):
        if all(finding.end <= other.start or finding.start >= other.end for other in kept):
            kept.append(finding)
    return sorted(kept, key=lambda f: (f.start, f.end))


def mask(text: str, finding: Finding, *, context: int = 12) -> str:
    """An excerpt that shows where the finding is but not what it is: a little context either side, the match
    masked except for a few characters that help recognise it (the last 4 digits of a card, a domain's end)."""
    match = text[finding.start : finding.end]
    if finding.detector in ("credit_card", "iban", "us_ssn", "phone"):
        shown = "".join("•" if c.isalnum() else c for c in match[:-4]) + match[-4:]
    elif finding.detector == "email":
        local, _, domain = match.partition("@")
        shown = local[:1] + "•" * max(len(local) - 1, 1) + "@" + "•" * max(len(domain) - 4, 1) + domain[-4:]
    elif finding.kind == "secret":
        shown = match[:4] + "•" * 8 + f"({len(match)} chars)"
    else:
        shown = match if len(match) <= 80 else match[:77] + "…"
    before = text[max(finding.start - context, 0) : finding.start]
    after = text[finding.end : finding.end + context]
    return f"{before}{shown}{after}".replace("\n", " ")


class StreamScanner:
    """Scans text that arrives in pieces. A finding is reported once, as soon as it is complete (SETTLE
    characters follow it) or when the stream ends. Pieces are scanned in batches of at least BATCH characters
    (or whenever `scan_now()` is called), each with a short overlap, so the cost stays near that of scanning
    the whole text once however small the pieces are."""

    BATCH = 192

    def __init__(self) -> None:
        self._tail = ""  # the text from offset _base on: enough to re-scan the overlap
        self._base = 0
        self._length = 0
        self._scanned_to = 0
        self._reported: set[tuple[str, int]] = set()

    def feed(self, piece: str) -> list[Finding]:
        self._tail += piece
        self._length += len(piece)
        if self._length - self._scanned_to < self.BATCH:
            return []
        return self._scan(final=False)

    def scan_now(self) -> list[Finding]:
        return self._scan(final=False) if self._length > self._scanned_to else []

    def finish(self) -> list[Finding]:
        return self._scan(final=True)

    def _scan(self, *, final: bool) -> list[Finding]:
        start = self._window_start()
        end = self._length
        out = []
        for finding in scan(self._tail[start - self._base :]):
            absolute = Finding(finding.kind, finding.detector, finding.start + start, finding.end + start)
            if absolute.end > end - SETTLE and not final:
                continue  # too near the end: more text may make it longer (or not a match at all)
            key = (absolute.detector, absolute.start)
            if key not in self._reported:
                self._reported.add(key)
                out.append(absolute)
        # Only findings not yet settled can still be reported: the scan restarts SETTLE + OVERLAP back.
        self._scanned_to = end - (0 if final else SETTLE)
        self._trim()
        return out

    def _window_start(self) -> int:
        start = max(self._scanned_to - OVERLAP, self._base)
        # Back to the whitespace before, so no token (a key, a JWT, an address) is cut at the window's start.
        while start > self._base and not self._tail[start - 1 - self._base].isspace():
            start -= 1
        return start

    def _trim(self) -> None:
        keep_from = max(self._scanned_to - OVERLAP - 16_384, 0)
        if keep_from - self._base > 32_768:
            self._tail = self._tail[keep_from - self._base :]
            self._base = keep_from
