"""The built-in LRS T7470 simulator.

* :mod:`.model` — the transmitter's state and documents, pure (no I/O), clock injected;
* :mod:`.device` — the interface the CoAP face is written against (:class:`~.device.Keypad`);
* :mod:`.notify`, :mod:`.resources` — the CoAP face: the ``/v1/notify`` stream and the requests;
* :mod:`.server` — :class:`~.server.Simulator`: implements the device on aiocoap, fault injection;
* :mod:`.flow` — a guest-flow generator and a deterministic scripted scenario;
* :mod:`.run` — the simulator alone until a signal (``pager-edge simulate``).

Nothing here imports the agent's own protocol code: the simulator plays the device, and sharing a
parser with the client would hide the very bugs the simulator exists to find.
"""

from agent.simulator.limits import SimError
from agent.simulator.model import Transmitter

__all__ = ["SimError", "Transmitter"]
