"""What the simulator's CoAP face needs from the device it speaks for — and nothing more.

Layered as aiocoap layers itself: one interface per layer, each layer importing only the interfaces
below it. The notifier (:mod:`.notify`) and the request resources (:mod:`.resources`) are written
against these protocols, never against :class:`~agent.simulator.server.Simulator`, which
implements them and wires everything together. So a resource cannot reach into the server's fault
machinery or counters, and a different device (a recorded one, say) could stand behind the same
resources.

* :class:`Device` — what the notifier needs: the state and its documents, and whether the device is
  talking at all (a silenced device neither answers nor notifies).
* :class:`Keypad` — what the resources need on top: the mutations, each applied to the model *and*
  broadcast to every observer, exactly as if someone pressed the keys on the transmitter.
"""

from __future__ import annotations

from typing import Any, Protocol

from agent.simulator.limits import Doc
from agent.simulator.model import Transmitter


class Device(Protocol):
    @property
    def model(self) -> Transmitter:
        """The state and its documents. Read it; change it only through a :class:`Keypad`, so
        that every change reaches the observers."""
        ...

    @property
    def awake(self) -> bool:
        """False while silenced: whatever is produced meanwhile is lost, as across an outage."""
        ...

    async def wait_awake(self) -> None:
        """Returns once the device answers again (at once when it is awake)."""
        ...


class Keypad(Device, Protocol):
    """The mutations. Each applies the change and broadcasts the resulting notifications; it
    raises :class:`~agent.simulator.model.SimError` (nothing changed) when the device refuses."""

    def create(
        self, number: int, goal: int | None = ..., label: str | None = ..., party_size: int = ...
    ) -> list[Doc]: ...

    def update(
        self,
        number: int,
        goal: int | None = ...,
        label: str | None = ...,
        party_size: int | None = ...,
    ) -> list[Doc]: ...

    def page(self, number: int, page_mode: str | None = ...) -> list[Doc]: ...

    def clear(self, number: int) -> list[Doc]: ...

    def remove(self, number: int) -> list[Doc]: ...

    def clear_all(self) -> list[Doc]: ...

    def reset_statistics(self) -> list[Doc]: ...

    def set_settings(self, **subset: Any) -> list[Doc]: ...

    def standalone_page(
        self,
        number: int,
        page_mode: str | None = ...,
        message: str | None = ...,
        system_id: int | None = ...,
    ) -> list[Doc]: ...
