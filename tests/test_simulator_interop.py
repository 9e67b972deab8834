"""Interoperability: libcoap's ``coap-client-notls`` (an independent CoAP implementation) against
the simulator. Skipped when the binary is missing: ``apt-get install -y libcoap3-bin``.

The commands are the ones in ``agent/simulator/INTEROP.md``.
"""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest

from tests.simfixtures import sim_and_client

CLIENT = shutil.which("coap-client-notls")
pytestmark = pytest.mark.skipif(
    CLIENT is None, reason="coap-client-notls not on PATH (apt-get install -y libcoap3-bin)"
)


async def coap_client(*args: str, timeout: float = 15.0) -> tuple[str, str]:
    assert CLIENT is not None
    proc = await asyncio.create_subprocess_exec(
        CLIENT, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return out.decode("utf-8"), err.decode("utf-8", "replace")


def json_stream(text: str) -> list[dict]:
    """coap-client prints notifications back to back without separators."""
    decoder, docs, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        item, i = decoder.raw_decode(text, i)
        docs.append(item)
    return docs


async def test_get_post_and_refusal():
    async with sim_and_client() as (sim, _, _clock):
        out, _ = await coap_client("-m", "get", f"{sim.uri}/v1/settings")
        assert json.loads(out)["settings"]["defaultTargetGoal"] == 300

        body = '{"number":12,"label":"Zoë","partySize":3}'
        out, _ = await coap_client("-m", "post", "-t", "50", "-e", body, f"{sim.uri}/v1/sessions")
        assert json.loads(out)["sessions"][0]["label"] == "Zoë"
        assert sim.model.active[12].party_size == 3

        out, err = await coap_client(
            "-m", "post", "-t", "50", "-e", '{"number": 13}', f"{sim.uri}/v1/sessions"
        )
        assert "4.00" in out + err and 13 not in sim.model.active

        out, _ = await coap_client("-m", "get", f"{sim.uri}/v1/sessions?number=12")
        assert json.loads(out)["sessions"][0]["number"] == 12


async def test_block2_and_etag():
    async with sim_and_client() as (sim, _, _clock):
        for n in range(1, 301):
            sim.create(n, label=["Zoë", "李娜", "Øyvind 🎉", ""][n % 4])
        out, _ = await coap_client("-m", "get", f"{sim.uri}/v1/sessions")
        assert [s["number"] for s in json.loads(out)["sessions"]] == list(range(1, 301))

        # -v 7 logs each PDU (to stdout or stderr, depending on the build).
        log = "".join(await coap_client("-v", "7", "-m", "get", f"{sim.uri}/v1/sessions?number=1"))
        etag = log.split("ETag:")[1].split(",")[0].split(" ")[0]
        assert etag.startswith("0x")
        log = "".join(
            await coap_client(
                "-v", "7", "-O", f"4,{etag}", "-m", "get", f"{sim.uri}/v1/sessions?number=1"
            )
        )
        assert "c:2.03" in log


async def test_observe_get_sessions_with_changes_and_acknowledged_pings():
    async with sim_and_client(ping_interval=0.5) as (sim, _, _clock):
        sim.create(1, label="Zoë")
        seconds = "3"
        observing = asyncio.ensure_future(
            coap_client(
                "-s", seconds, "-B", seconds, "-m", "get",
                f"{sim.uri}/v1/notify?action=get_sessions",
            )
        )  # fmt: skip
        while sim.observer_count == 0:
            await asyncio.sleep(0.05)
        for n in (2, 3, 4):
            sim.create(n, label="李娜")
        sim.page(2)
        await asyncio.sleep(2.0)  # > 3 ping intervals after the first ping: not evicted
        assert sim.observer_count == 1
        out, _ = await observing
        docs = json_stream(out)
        assert docs[0]["sessions"][0]["number"] == 1
        changes = [d["globalSessionSequence"] for d in docs[1:] if "sessions" in d["responseTypes"]]
        assert changes == [2, 3, 4, 5]
        assert sum(d["responseTypes"] == ["ping"] for d in docs) >= 3
        await asyncio.sleep(0.1)
        assert sim.observer_count == 0  # libcoap deregisters at the end of -s
