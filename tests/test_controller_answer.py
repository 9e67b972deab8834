"""A request that times out leaves aiocoap's response future alone (see `first_answer`)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from agent.controller.client import first_answer


async def test_a_timeout_does_not_cancel_aiocoaps_response_future() -> None:
    response: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    req: Any = SimpleNamespace(response=response)
    with pytest.raises(TimeoutError):
        await first_answer(req, 0.01)
    assert not response.cancelled()
    response.set_result("a late answer")  # what aiocoap does when it arrives: no InvalidStateError


async def test_a_cancelled_caller_does_not_cancel_it_either() -> None:
    response: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    req: Any = SimpleNamespace(response=response)
    task = asyncio.ensure_future(first_answer(req, 10))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not response.cancelled()


async def test_the_answer_is_returned_when_it_comes_in_time() -> None:
    response: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    req: Any = SimpleNamespace(response=response)
    asyncio.get_running_loop().call_later(0.01, response.set_result, "2.05")
    assert await first_answer(req, 5) == "2.05"


async def test_an_error_after_the_caller_gave_up_is_read(caplog: pytest.LogCaptureFixture) -> None:
    """aiocoap fails a pending request at shutdown; nobody awaits it any more, and asyncio
    would complain that the exception was never retrieved."""
    import gc

    response: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    req: Any = SimpleNamespace(response=response)
    with pytest.raises(TimeoutError):
        await first_answer(req, 0.01)
    response.set_exception(RuntimeError("library shut down"))
    await asyncio.sleep(0)
    del req, response
    gc.collect()
    assert "never retrieved" not in caplog.text
