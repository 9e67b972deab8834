"""Who may open the staff board from a browser: the PIN with its lockout, and sign-ins that expire.

Pure state driven by an injected monotonic clock (seconds), so the lockout and the idle expiry are
tested without waiting; the HTTP side (cookies, status codes) is in :mod:`tui.web.server`. The PIN
itself is held here and nowhere else: it is compared in constant time and never formatted into a
message.
"""

from __future__ import annotations

import hmac
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

PIN_ENV = "PAGER_EDGE_WEB_PIN"
PIN_DIGITS = (4, 12)
MAX_WRONG = 5
LOCKOUT_SECONDS = 300.0
# Addresses whose wrong tries are remembered at most (a LAN has far fewer devices).
MAX_TRACKED_ADDRESSES = 4096
# Live sign-ins at most; the least recently used one goes first.
MAX_SIGN_INS = 256

MonotonicClock = Callable[[], float]


class PinError(ValueError):
    """The configured PIN is unusable; the message never contains it."""


def check_pin(pin: str | None) -> str:
    """The PIN if it is 4–12 digits; otherwise :class:`PinError` saying what is expected."""
    lo, hi = PIN_DIGITS
    if not pin:
        raise PinError(
            f"no sign-in PIN: set {PIN_ENV} in the environment or in the secrets file "
            "([secrets] path)"
        )
    if not (pin.isascii() and pin.isdigit() and lo <= len(pin) <= hi):
        raise PinError(f"{PIN_ENV} must be {lo} to {hi} digits (6 or more recommended)")
    return pin


def make_pin(digits: int = 6) -> str:
    """A random PIN for a throw-away board (the demo prints it)."""
    return "".join(str(secrets.randbelow(10)) for _ in range(digits))


@dataclass(frozen=True)
class Verdict:
    outcome: Literal["ok", "wrong", "locked"]
    # "wrong": tries left before the lockout (0: this try started it).
    tries_left: int = 0
    # "locked": whole seconds until this address may try again.
    retry_after: int = 0


@dataclass
class _Failures:
    count: int = 0
    locked_until: float | None = None


class PinGate:
    """Checks PIN attempts per client address; five wrong ones lock that address out for 5 min.

    While locked, every attempt is refused unchecked, the right PIN included, so a guesser learns
    nothing; the lockout is not extended by further attempts (``retry_after`` stays truthful).
    """

    def __init__(
        self,
        pin: str,
        clock: MonotonicClock,
        *,
        max_wrong: int = MAX_WRONG,
        lockout_seconds: float = LOCKOUT_SECONDS,
    ) -> None:
        self._pin = check_pin(pin).encode()
        self._clock = clock
        self.max_wrong = max_wrong
        self.lockout_seconds = lockout_seconds
        self._failures: dict[str, _Failures] = {}

    def attempt(self, address: str, candidate: str) -> Verdict:
        now = self._clock()
        f = self._failures.get(address)
        if f is not None and f.locked_until is not None:
            if now < f.locked_until:
                return Verdict("locked", retry_after=max(1, math.ceil(f.locked_until - now)))
            del self._failures[address]
            f = None
        if hmac.compare_digest(candidate.encode("utf-8", "replace"), self._pin):
            self._failures.pop(address, None)
            return Verdict("ok")
        if f is None:
            self._forget_oldest()
            f = self._failures[address] = _Failures()
        f.count += 1
        if f.count >= self.max_wrong:
            f.locked_until = now + self.lockout_seconds
        return Verdict("wrong", tries_left=max(0, self.max_wrong - f.count))

    def locked(self, address: str) -> int:
        """Seconds this address is still locked out for (0: it may try)."""
        f = self._failures.get(address)
        if f is None or f.locked_until is None:
            return 0
        return max(0, math.ceil(f.locked_until - self._clock()))

    def _forget_oldest(self) -> None:
        # Insertion order: the address that failed first is forgotten first.
        while len(self._failures) >= MAX_TRACKED_ADDRESSES:
            del self._failures[next(iter(self._failures))]


@dataclass
class SignIn:
    """One browser signed in with the PIN. `number` names it in logs; the token never is."""

    number: int
    address: str
    last_used: float


class SignIns:
    """Sign-in tokens (the cookie's value) that expire `idle_seconds` after their last use."""

    def __init__(self, clock: MonotonicClock, idle_seconds: float) -> None:
        self._clock = clock
        self.idle_seconds = idle_seconds
        self._by_token: dict[str, SignIn] = {}
        self._numbers = 0

    def create(self, address: str) -> tuple[str, SignIn]:
        self.sweep()
        while len(self._by_token) >= MAX_SIGN_INS:
            oldest = min(self._by_token, key=lambda t: self._by_token[t].last_used)
            del self._by_token[oldest]
        token = secrets.token_urlsafe(32)
        self._numbers += 1
        sign_in = self._by_token[token] = SignIn(self._numbers, address, self._clock())
        return token, sign_in

    def get(self, token: str | None) -> SignIn | None:
        """The live sign-in for this cookie value, or None (unknown or expired)."""
        if not token:
            return None
        sign_in = self._by_token.get(token)
        if sign_in is None:
            return None
        if self._clock() - sign_in.last_used >= self.idle_seconds:
            del self._by_token[token]
            return None
        return sign_in

    def touch(self, sign_in: SignIn) -> None:
        sign_in.last_used = self._clock()

    def sweep(self) -> None:
        now = self._clock()
        for token in [
            t for t, s in self._by_token.items() if now - s.last_used >= self.idle_seconds
        ]:
            del self._by_token[token]

    def __len__(self) -> int:
        return len(self._by_token)
