"""The built-in LRS T7470 simulator.

* :mod:`.model` — the transmitter's state and documents, pure (no I/O), clock injected;
* :mod:`.server` — the CoAP face on aiocoap (:class:`~.server.Simulator`), with fault injection;
* :mod:`.flow` — a guest-flow generator and a deterministic scripted scenario;
* :mod:`.cli` — ``pager-edge simulate``.

Nothing here imports the agent's own protocol code: the simulator plays the device, and sharing a
parser with the client would hide the very bugs the simulator exists to find.
"""

from agent.simulator.model import SimError, Transmitter

__all__ = ["SimError", "Transmitter"]
