"""The ingest benchmark's transmitter: prepared CoAP notifications from a plain UDP socket.

Why not the simulator: a Python CoAP server producing documents costs about as much per
notification as the agent consuming them, so a "ceiling" measured with it measured the producer.
Here the documents are the simulator's own (its :class:`~agent.simulator.model.Transmitter` plays
the lifecycles: real ``globalSessionSequence``, real labels, statistics and times) but they are
rendered and encoded before the run; sending one is a header, a token, an Observe number and a
``sendto``. The producer runs in its own process and imports no aiocoap.

Reliability: notifications go out as **CON**, and at most `window` of them are unacknowledged at
a time (``window=1`` is NSTART=1, what the T7470 simulator does); an unacknowledged one is
retransmitted (2 s, doubling, four times) and then the observer is dropped, as a CoAP server
would. So a consumer that falls behind slows the producer down instead of losing datagrams in a
full socket buffer, which NON would do and which would measure gap recovery instead of
throughput.

What the agent asks besides the observation is answered from a *shadow* of the device — the
active sessions, the last `history_limit` ended ones, statistics and sequence as of the last
notification sent — in the simulator's document shapes: ``GET /v1/sessions``,
``/v1/sessions/history`` (Block2-wise, it is tens of KB), ``/v1/sessions/statistics`` and the
registration's initial answer (the active sessions in chunks that fit one block). Pings (CON, the
current sequence) go out every `ping_interval`.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing as mp
import resource
import select
import socket
import time
from array import array
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from agent.clock import VirtualClock
from agent.simulator.jsonio import dumps
from agent.simulator.limits import UNSET_SEQUENCE
from agent.simulator.model import Transmitter
from bench import coapwire as cw

log = logging.getLogger(__name__)
BLOCK_SZX = 6  # 1024-byte blocks, what aiocoap asks for over UDP
ACK_TIMEOUT = 2.0
MAX_RETRANSMIT = 4
Doc = dict[str, Any]


# --- the documents -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One prepared notification and what it changes in the device's shadow."""

    seq: int
    tail: bytes  # Content-Format, payload marker, the JSON document: everything after Observe
    number: int
    listed: Doc | None  # the session as the notification shows it; None once it ended
    ended: Doc | None  # its history item once it ended
    statistics: Doc
    timestamp: str | None


def step_of(doc: Doc) -> Step:
    """A one-session notification document (what ``Transmitter`` mutations return) as a step."""
    item = doc["sessions"][0]
    listed = ended = None
    if item["state"] == "cleared":
        ended = {k: v for k, v in item.items() if k != "sessionSequence"}
        ended["clearType"] = "STOP"
    else:
        listed = item
    return Step(
        seq=doc["globalSessionSequence"],
        tail=cw.notification_tail(dumps(doc)),
        number=item["number"],
        listed=listed,
        ended=ended,
        statistics=doc["statistics"],
        timestamp=doc.get("timestamp"),
    )


def lifecycle_docs(
    model: Transmitter,
    clock: VirtualClock,
    parties: int,
    *,
    first: int,
    rate: float,
    lanes: int = 8,
) -> Iterator[Doc]:
    """`parties` guests created → paged → seated, `lanes` at a time as a busy stand interleaves
    them; the transmitter's clock moves 1/`rate` s per notification."""
    for start in range(0, parties, lanes):
        numbers = [(first + start + i) % 4000 + 1 for i in range(min(lanes, parties - start))]
        for op in ("create", "page", "clear"):
            for number in numbers:
                clock.advance(1 / rate)
                if op == "create":
                    docs = model.create(
                        number, label=f"Party {number} Zoë", party_size=2 + number % 5
                    )
                elif op == "page":
                    docs = model.page(number)
                else:
                    docs = model.clear(number)
                yield from docs


class Shadow:
    """The device as of the last notification sent, rendered as the simulator renders it."""

    def __init__(self, model: Transmitter, history_limit: int):
        self.device_name = model.device_name
        self.firmware = model.firmware_version
        self.sequence = model.sequence
        self.timestamp = model.sessions_document()["timestamp"]
        self.statistics: Doc = model.statistics_json()
        self.active: dict[int, Doc] = {}
        self.history: deque[Doc] = deque(maxlen=history_limit)

    def apply(self, step: Step) -> None:
        self.sequence, self.statistics = step.seq, step.statistics
        if step.timestamp is not None:
            self.timestamp = step.timestamp
        if step.listed is not None:
            self.active[step.number] = step.listed
        else:
            self.active.pop(step.number, None)
            if step.ended is not None:
                self.history.append(step.ended)

    def meta(self, types: list[str]) -> Doc:
        return {
            "responseTypes": types,
            "globalSessionSequence": self.sequence,
            "timestamp": self.timestamp,
            "deviceName": self.device_name,
            "firmwareVersion": self.firmware,
        }

    def listed(self) -> list[Doc]:
        return sorted(self.active.values(), key=lambda s: int(s["id"]))

    def sessions_document(self) -> Doc:
        """``GET /v1/sessions``: a GET says sessionSequence 65535 ("unset"), as the device does."""
        sessions = [{**s, "sessionSequence": UNSET_SEQUENCE} for s in self.listed()]
        return {
            **self.meta(["sessions", "statistics"]),
            "statistics": self.statistics,
            "sessions": sessions,
        }

    def history_document(self) -> Doc:
        return {**self.meta(["session_history"]), "session_history": list(self.history)}

    def statistics_document(self) -> Doc:
        return {**self.meta(["statistics"]), "statistics": self.statistics}

    def ping_document(self) -> Doc:
        return self.meta(["ping"])

    def initial_chunks(self, limit: int = 1024) -> list[bytes]:
        """The observation's first answer and follow-ups: active sessions, each chunk one block."""
        sessions = self.listed()
        chunks: list[bytes] = []
        start = 0
        while True:
            size = len(sessions) - start
            while True:
                doc = {
                    **self.meta(["sessions", "statistics"]),
                    "statistics": self.statistics,
                    "sessions": sessions[start : start + size],
                }
                payload = dumps(doc)
                if size <= 1 or len(payload) <= limit:
                    break
                size -= 1
            chunks.append(payload)
            start += size
            if start >= len(sessions):
                return chunks


# --- the producer loop ---------------------------------------------------------------------------


@dataclass(slots=True)
class Outstanding:
    data: bytes
    deadline: float
    index: int  # the scripted notification's index, -1 for a ping or a chunk
    tries: int = 0


@dataclass(slots=True)
class Play:
    steps: list[Step]
    rate: float | None
    window: int
    started: float
    next: int = 0
    send_times: array[float] = field(default_factory=lambda: array("d"))
    cpu_start: float = 0.0

    def due(self) -> float:
        return self.started if self.rate is None else self.started + self.next / self.rate


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


class Producer:
    def __init__(self, conn: Connection, *, seed: int, history_limit: int, ping_interval: float):
        self.conn = conn
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.clock = VirtualClock(datetime.now(UTC).replace(microsecond=0))
        self.model = Transmitter(clock=self.clock, seed=seed)
        self.shadow = Shadow(self.model, history_limit)
        self.ping_interval = ping_interval
        self.parties = 0
        self.prepared: list[Step] = []
        self.play: Play | None = None
        self.observer: tuple[Any, bytes] | None = None  # (address, token)
        self.observe = 0
        self.mid = 0
        self.outstanding: dict[int, Outstanding] = {}
        self.extra: deque[bytes] = deque()  # pings and chunks waiting for the window
        self.next_ping = time.monotonic() + ping_interval
        self.answers: OrderedDict[tuple[Any, int], bytes] = OrderedDict()  # request dedup
        self.transfers: dict[tuple[Any, str], bytes] = {}  # Block2 payloads being fetched
        self.stats = {"retransmissions": 0, "unobserved": 0, "evicted": 0, "requests": 0}

    # --- commands ------------------------------------------------------------------------

    def prepare(self, parties: int, rate: float) -> tuple[int, int, int]:
        now = datetime.now(UTC).replace(microsecond=0)
        if now > self.clock.now():
            self.clock.set(now)
        docs = lifecycle_docs(self.model, self.clock, parties, first=self.parties, rate=rate)
        self.prepared = [step_of(d) for d in docs]
        self.parties += parties
        return len(self.prepared), self.prepared[0].seq, self.prepared[-1].seq

    def start_play(self, rate: float | None, window: int) -> None:
        self.stats = dict.fromkeys(self.stats, 0)
        self.play = Play(self.prepared, rate, max(1, window), time.monotonic(), cpu_start=_cpu())
        self.prepared = []
        self.conn.send(("started", self.play.started))

    def _finish_play(self) -> None:
        play = self.play
        assert play is not None
        self.play = None
        summary = {
            **self.stats,
            "sent": len(play.send_times),
            "started": play.started,
            "finished": time.monotonic(),
            "cpu": _cpu() - play.cpu_start,
        }
        self.conn.send(("played", summary, play.send_times))

    # --- sending -------------------------------------------------------------------------

    def _next_mid(self) -> int:
        self.mid = (self.mid + 1) & 0xFFFF
        return self.mid

    def _send_con(self, tail: bytes, index: int, now: float) -> None:
        assert self.observer is not None
        address, token = self.observer
        mid = self._next_mid()
        self.observe += 1
        data = cw.notification(cw.CON, mid, token, self.observe, tail)
        self.outstanding[mid] = Outstanding(data, now + ACK_TIMEOUT, index)
        self.sock.sendto(data, address)

    def pump(self, now: float) -> None:
        """Retransmit what timed out, then send what is due while the window has room."""
        for mid, out in list(self.outstanding.items()):
            if now < out.deadline:
                continue
            if out.tries >= MAX_RETRANSMIT:
                log.warning("observer does not acknowledge; dropping it")
                self.stats["evicted"] += 1
                self._drop_observer()
                break
            out.tries += 1
            out.deadline = now + ACK_TIMEOUT * 2**out.tries
            self.stats["retransmissions"] += 1
            if self.observer is not None:
                self.sock.sendto(out.data, self.observer[0])
            del self.outstanding[mid]
            self.outstanding[mid] = out
        if self.observer is not None and now >= self.next_ping:
            self.extra.append(cw.notification_tail(dumps(self.shadow.ping_document())))
            self.next_ping = now + self.ping_interval
        play = self.play
        while True:
            if self.observer is not None and len(self.outstanding) >= (play.window if play else 1):
                break
            if self.extra and self.observer is not None:
                self._send_con(self.extra.popleft(), -1, now)
                continue
            if play is None or play.next >= len(play.steps) or play.due() > now:
                break
            step = play.steps[play.next]
            play.next += 1
            self.shadow.apply(step)
            play.send_times.append(time.monotonic())
            if self.observer is None:
                self.stats["unobserved"] += 1
            else:
                self._send_con(step.tail, play.next - 1, now)
        if play is not None and play.next >= len(play.steps):
            if not any(o.index >= 0 for o in self.outstanding.values()):
                self._finish_play()

    def wake_in(self, now: float) -> float:
        waits = [self.next_ping - now]
        waits += [o.deadline - now for o in self.outstanding.values()]
        play = self.play
        if play is not None and play.next < len(play.steps) and len(self.outstanding) < play.window:
            waits.append(play.due() - now)
        return max(0.0, min(waits))

    # --- receiving ------------------------------------------------------------------------

    def _drop_observer(self) -> None:
        self.observer = None
        self.outstanding.clear()
        self.extra.clear()

    def receive(self, data: bytes, address: Any) -> None:
        try:
            msg = cw.decode(data)
        except cw.CoapDecodeError as exc:
            log.warning("undecodable datagram from %s: %s", address, exc)
            return
        if msg.code == cw.EMPTY:
            if msg.mtype == cw.ACK:
                self.outstanding.pop(msg.mid, None)
            elif msg.mtype == cw.RST:
                if msg.mid in self.outstanding:
                    self._drop_observer()  # the consumer cancelled its observation
            elif msg.mtype == cw.CON:  # a CoAP ping
                self.sock.sendto(cw.encode(cw.RST, cw.EMPTY, msg.mid), address)
            return
        if msg.code < 32 and msg.mtype in (cw.CON, cw.NON):
            self._request(msg, address)

    def _request(self, msg: cw.Decoded, address: Any) -> None:
        key = (address, msg.mid)
        if key in self.answers:  # a retransmitted request: the same answer again
            self.sock.sendto(self.answers[key], address)
            return
        self.stats["requests"] += 1
        options: list[tuple[int, bytes]] = []
        code, payload = self._answer(msg, address, options)
        if payload:
            options.append((cw.CONTENT_FORMAT, bytes([cw.JSON_FORMAT])))
        reply_type, reply_mid = (
            (cw.ACK, msg.mid) if msg.mtype == cw.CON else (cw.NON, self._next_mid())
        )
        data = cw.encode(reply_type, code, reply_mid, msg.token, options, payload)
        self.answers[key] = data
        if len(self.answers) > 512:
            self.answers.popitem(last=False)
        self.sock.sendto(data, address)

    def _answer(
        self, msg: cw.Decoded, address: Any, options: list[tuple[int, bytes]]
    ) -> tuple[int, bytes]:
        if msg.code != cw.GET:
            return cw.BAD_REQUEST, b""
        path = msg.path()
        if path == "/v1/notify":
            observe = msg.uint_option(cw.OBSERVE)
            chunks = (
                self.shadow.initial_chunks()
                if "action=get_sessions" in msg.query()
                else [dumps(self.shadow.meta([]))]
            )
            if observe == 0:
                self._drop_observer()
                self.observer, self.observe = (address, msg.token), 0
                self.next_ping = time.monotonic() + self.ping_interval
                self.extra.extend(cw.notification_tail(c) for c in chunks[1:])
                options.append((cw.OBSERVE, b""))
            elif observe == 1 and self.observer == (address, msg.token):
                self._drop_observer()
            return cw.CONTENT, chunks[0]
        shadow = self.shadow
        documents = {
            "/v1/sessions": shadow.sessions_document,
            "/v1/sessions/history": shadow.history_document,
            "/v1/sessions/statistics": shadow.statistics_document,
        }
        render = documents.get(path)
        if render is None or msg.query():
            return cw.NOT_FOUND, b""
        return self._blockwise(msg, address, path, render, options)

    def _blockwise(
        self,
        msg: cw.Decoded,
        address: Any,
        path: str,
        render: Any,
        options: list[tuple[int, bytes]],
    ) -> tuple[int, bytes]:
        """Block2: the whole document when it fits, else the block asked for (RFC 7959)."""
        asked = msg.block2()
        num, szx = (0, BLOCK_SZX) if asked is None else (asked[0], min(asked[2], BLOCK_SZX))
        key = (address, path)
        payload = self.transfers.get(key) if num > 0 else None
        if payload is None:
            payload = dumps(render())
        size = 1 << (szx + 4)
        if len(payload) <= size and num == 0:
            self.transfers.pop(key, None)
            return cw.CONTENT, payload
        if num * size >= len(payload):
            return cw.BAD_REQUEST, b""
        more = (num + 1) * size < len(payload)
        if more:
            self.transfers[key] = payload
        else:
            self.transfers.pop(key, None)
        options.append((cw.ETAG, hashlib.sha1(payload).digest()[:8]))
        options.append((cw.BLOCK2, cw.block2_value(num, more, szx)))
        return cw.CONTENT, payload[num * size : (num + 1) * size]

    # --- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        self.conn.send(("port", self.sock.getsockname()[1]))
        while True:
            now = time.monotonic()
            self.pump(now)
            waiting: list[Any] = [self.sock, self.conn]
            readable, _, _ = select.select(waiting, [], [], self.wake_in(now))
            if self.sock in readable:
                for _ in range(256):
                    try:
                        data, address = self.sock.recvfrom(65536)
                    except BlockingIOError:
                        break
                    self.receive(data, address)
            if self.conn in readable:
                cmd, *args = self.conn.recv()
                if cmd == "stop":
                    return
                if cmd == "prepare":
                    self.conn.send(("prepared", *self.prepare(*args)))
                elif cmd == "play":
                    self.start_play(*args)


def _producer_main(conn: Connection, seed: int, history_limit: int, ping_interval: float) -> None:
    logging.basicConfig(level=logging.WARNING)
    producer = Producer(conn, seed=seed, history_limit=history_limit, ping_interval=ping_interval)
    try:
        producer.run()
    finally:
        producer.sock.close()


# --- the parent's handle -------------------------------------------------------------------


@dataclass
class Played:
    sent: int
    started: float
    finished: float
    cpu: float  # the producer's own CPU seconds for the run
    send_times: array[float]
    retransmissions: int
    unobserved: int
    requests: int  # GETs answered during the run (resyncs, history blocks)


class ProducerProcess:
    """The producer in a child process (spawned: nothing of the parent's loop or aiocoap in it)."""

    def __init__(self, *, seed: int = 1, history_limit: int = 300, ping_interval: float = 30.0):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_producer_main, args=(child, seed, history_limit, ping_interval), daemon=True
        )
        self.proc.start()
        self.port: int = self._expect("port")[0]
        self.last_seq: int | None = None

    def _expect(self, kind: str, timeout: float = 600.0) -> list[Any]:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"the producer did not say {kind!r} within {timeout:g} s")
        message: list[Any] = list(self.conn.recv())
        if message[0] != kind:
            raise RuntimeError(f"the producer said {message[0]!r}, expected {kind!r}")
        return message[1:]

    def prepare(self, parties: int, rate: float) -> int:
        """Render and encode `parties` lifecycles (3 notifications each); returns how many."""
        self.conn.send(("prepare", parties, rate))
        count, _first, last = self._expect("prepared")
        self.last_seq = last
        return int(count)

    def start(self, rate: float | None, window: int) -> None:
        """Start sending what was prepared (`rate` None: as fast as the window allows)."""
        self.conn.send(("play", rate, window))

    def wait_started(self) -> float:
        """When the run started (``time.monotonic()``: one clock for every process here)."""
        return float(self._expect("started", 30.0)[0])

    def wait_played(self, timeout: float = 600.0) -> Played:
        summary, send_times = self._expect("played", timeout)
        return Played(
            sent=summary["sent"],
            started=summary["started"],
            finished=summary["finished"],
            cpu=summary["cpu"],
            send_times=send_times,
            retransmissions=summary["retransmissions"],
            unobserved=summary["unobserved"],
            requests=summary["requests"],
        )

    def stop(self) -> None:
        try:
            self.conn.send(("stop",))
        except OSError:
            pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
