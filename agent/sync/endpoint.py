"""Where the sync sends: the ``[sync] endpoint`` rules, checked before anything is sent."""

from __future__ import annotations

import ipaddress

import httpx

from agent.sync.answers import TOKEN_ENV


class SyncSetupError(Exception):
    """Sync cannot start as configured; the message says what to change."""


def check_endpoint(url: str) -> httpx.URL:
    """The endpoint as a URL; https, or plain http to a loopback address only."""
    if not url:
        raise SyncSetupError(
            "no [sync] endpoint configured (an https:// URL of the ingest service)"
        )
    try:
        u = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise SyncSetupError(f"[sync] endpoint is not a valid URL: {exc}") from None
    if u.userinfo:
        raise SyncSetupError(
            f"[sync] endpoint must not carry credentials; the token comes from {TOKEN_ENV}"
        )
    if u.scheme == "https" and u.host:
        return u
    if u.scheme == "http" and u.host:
        if u.host == "localhost":
            return u
        try:
            if ipaddress.ip_address(u.host).is_loopback:
                return u
        except ValueError:
            pass
        raise SyncSetupError(
            f"[sync] endpoint {url!r}: plain http:// is only allowed to a loopback address "
            "(127.0.0.1, ::1, localhost); use https://"
        )
    raise SyncSetupError(f"[sync] endpoint {url!r}: expected an https:// URL")


__all__ = ["SyncSetupError", "check_endpoint"]
