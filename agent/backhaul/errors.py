"""What can go wrong talking to an operator API, and what the poller should do about it."""

from __future__ import annotations

from typing import Literal

from agent.logs import redact

# stop: a person must fix something (credentials, allowed IP range, ICCID); asking again cannot help
#   and, for ThingSpace logins, would lock the account.
# backoff: the operator asked us to slow down (rate limit); keep going, less often.
# retry_later: transient on the operator's side; ask again at the next regular interval.
# relogin: the session/bearer token expired; the client renews it once and repeats the call.
Reaction = Literal["stop", "backoff", "retry_later", "relogin"]


class OperatorError(Exception):
    """An answer from the operator (or something posing as it) that is not the data asked for.

    ``message`` is written for the person at the host stand and always passes through
    :func:`agent.logs.redact`, because some servers echo request details back in error bodies.
    """

    def __init__(self, code: str, http_status: int | None, message: str, reaction: Reaction):
        self.code = code
        self.http_status = http_status
        self.message = redact(message)
        self.reaction: Reaction = reaction
        super().__init__(self.message)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, http_status={self.http_status!r}, "
            f"message={self.message!r}, reaction={self.reaction!r})"
        )


class NetworkFailure(OperatorError):
    """No answer at all (DNS, connect, TLS, timeout). Tells nothing about the SIM or credentials.

    The API is reached over the backhaul itself, so this usually means the link is down: the
    poller pauses instead of treating it as an operator error.
    """

    def __init__(self, message: str):
        super().__init__("network", None, message, "retry_later")
