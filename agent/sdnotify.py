"""systemd readiness and watchdog notifications (sd_notify), without a dependency.

The unit runs the agent as ``Type=notify`` with ``WatchdogSec=``: systemd waits for ``READY=1``
before it calls the service started, and restarts it when ``WATCHDOG=1`` stops arriving. The
protocol is one AF_UNIX datagram of ``KEY=value`` lines sent to ``$NOTIFY_SOCKET`` (a path, or an
abstract-namespace name written with a leading ``@``). Outside systemd the variable is absent and
every call here is a silent no-op, so ``pager-edge run`` behaves the same from a shell.

How the daemon uses it::

    notifier = Notifier()
    ...                                  # open the store (migrations), start the tasks
    notifier.ready("observing 192.0.2.10")
    wd = asyncio.create_task(watchdog_loop(notifier, is_healthy))   # not under supervise()
    ...
    notifier.stopping()                  # on SIGTERM, before the shutdown work

``watchdog_loop`` pings only while ``is_healthy()`` is true. A blocked event loop cannot run it,
and an unhealthy agent stops it on purpose: either way systemd's watchdog fires and
``Restart=on-failure`` brings up a fresh process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

__all__ = ["Notifier", "watchdog_loop"]


def _socket_address(value: str | None) -> str | None:
    """The address to send to, or None when the value is not one sd_notify accepts."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]  # Linux abstract namespace
    if value.startswith("/"):
        return value
    return None  # relative paths and other schemes (vsock:) are not for us


class Notifier:
    """Sends sd_notify messages to the socket named by ``$NOTIFY_SOCKET``.

    The environment is read once, at construction. ``unset_environment=True`` removes
    ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` from ``os.environ`` afterwards, so
    child processes do not inherit them (systemd would ignore their messages anyway with
    ``NotifyAccess=main``).
    """

    def __init__(
        self, environ: Mapping[str, str] | None = None, *, unset_environment: bool = False
    ) -> None:
        env = os.environ if environ is None else environ
        self._raw_address = env.get("NOTIFY_SOCKET") or None
        self._address = _socket_address(self._raw_address)
        if self._raw_address and self._address is None:
            log.warning("NOTIFY_SOCKET=%r is not a path or @name; not notifying", self._raw_address)
        self._watchdog_usec = env.get("WATCHDOG_USEC")
        self._watchdog_pid = env.get("WATCHDOG_PID")
        self._sock: socket.socket | None = None
        self._failed = False
        if unset_environment and environ is None:
            for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                os.environ.pop(key, None)

    @property
    def enabled(self) -> bool:
        """True when running under a service manager that listens for notifications."""
        return self._address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines in one datagram; True if it was sent.

        Never raises: a vanished socket or a full queue is logged once and the agent carries on
        (systemd notices missing watchdog pings on its own).
        """
        if self._address is None or not assignments:
            return False
        payload = "\n".join(assignments).encode("utf-8")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # MSG_DONTWAIT: this runs on the event loop; never block it on a busy manager.
            self._sock.sendto(payload, socket.MSG_DONTWAIT, self._address)
        except OSError as exc:
            if not self._failed:
                log.warning("sd_notify to %s failed: %s", self._raw_address, exc)
                self._failed = True
            return False
        if self._failed:
            log.info("sd_notify to %s works again", self._raw_address)
            self._failed = False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Startup is complete (store open, migrations done, tasks running)."""
        lines = ["READY=1"]
        if status:
            lines.append(_status_line(status))
        return self.notify(*lines)

    def watchdog(self) -> bool:
        """One keep-alive ping."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown has begun."""
        lines = ["STOPPING=1"]
        if status:
            lines.append(_status_line(status))
        return self.notify(*lines)

    def status(self, text: str) -> bool:
        """Free-form one-line status, shown by ``systemctl status``."""
        return self.notify(_status_line(text))

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more time for the current start/stop step (a long migration, a backup)."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(1, int(seconds * 1_000_000))}")

    def watchdog_interval(self) -> float | None:
        """Seconds between pings (half the configured timeout), or None when no watchdog applies.

        None when ``$WATCHDOG_USEC`` is absent or invalid, when ``$WATCHDOG_PID`` names another
        process (the variables were inherited, not meant for us), or when not under systemd.
        """
        if self._address is None or not self._watchdog_usec:
            return None
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        if usec <= 0:
            return None
        if self._watchdog_pid:
            try:
                if int(self._watchdog_pid) != os.getpid():
                    return None
            except ValueError:
                return None
        return usec / 2 / 1_000_000

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _status_line(text: str) -> str:
    # One datagram line per assignment: a newline in the text would start a new (bogus) key.
    return "STATUS=" + " ".join(text.split())


async def watchdog_loop(
    notifier: Notifier,
    is_healthy: Callable[[], bool],
    *,
    interval: float | None = None,
) -> None:
    """Ping the watchdog every ``interval`` seconds (default: half of ``$WATCHDOG_USEC``) while
    ``is_healthy()`` is true.

    Returns at once when no watchdog is configured, so run it as a plain task rather than under
    :func:`agent.supervise.supervise` (which would restart a task that returns). An exception
    from ``is_healthy`` counts as unhealthy. Cancel the task on shutdown.
    """
    period = interval if interval is not None else notifier.watchdog_interval()
    if period is None or period <= 0:
        return
    healthy_before = True
    while True:
        try:
            healthy = bool(is_healthy())
        except Exception:
            log.exception("health check raised; withholding the watchdog ping")
            healthy = False
        if healthy:
            notifier.watchdog()
            if not healthy_before:
                log.info("agent healthy again; watchdog pings resumed")
                notifier.status("healthy")
        elif healthy_before:
            log.error("agent unhealthy; withholding watchdog pings so systemd restarts it")
            notifier.status("unhealthy: watchdog pings withheld")
        healthy_before = healthy
        await asyncio.sleep(period)
