"""What the limits at the edge (`app/runtime/protocol.py`) add to each request, measured in-process.

No sockets: Uvicorn's httptools protocol and Keyhouse's subclass of it are each fed the same
kept-alive token request, over and over, through a fake transport, in front of an app that only
answers. Rounds alternate between the two; on a shared machine other processes only ever add
time, so the best round of each is the better estimate, and the first quartile is shown beside
it. The
difference is what counting the head's bytes and headers and starting and stopping its timer
cost a request: the part of the edge's work that every request pays.

The CPU time of this process is measured (not the wall clock), in many short rounds on uvloop,
as `keyhouse serve` runs: of two classes doing the same work, the best rounds differ by a
microsecond or two on a busy machine.

    .venv/bin/python bench/protocol_cost.py [--rounds 60] [--requests 2000]
"""

import argparse
import asyncio
import statistics
import time
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.runtime.protocol import LimitedHttpProtocol

# A backend's token request, as httpx sends it.
REQUEST = (
    b"POST /oauth/access_token HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
    b"User-Agent: python-httpx/0.28.1\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
    b"Connection: keep-alive\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 29\r\n\r\ngrant_type=client_credentials"
)
BODY = b'{"access_token":"x","token_type":"Bearer","expires_in":3600}'


async def answer(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


class Transport:
    """Enough of an asyncio transport for the protocol: writes are counted, not sent."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name in ("sockname", "peername") else default

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...


async def microseconds_per_request(protocol_class: type[HttpToolsProtocol], requests: int) -> float:
    config = Config(app=answer, lifespan="off", access_log=False, log_config=None)
    state = ServerState()
    protocol = protocol_class(config, state, {})
    protocol.connection_made(Transport())  # type: ignore[arg-type]
    started = time.process_time()
    for _ in range(requests):
        protocol.data_received(REQUEST)
        await asyncio.gather(*state.tasks)
    elapsed = time.process_time() - started
    protocol.connection_lost(None)
    return elapsed / requests * 1e6


async def measure(rounds: int, requests: int) -> dict[str, list[float]]:
    classes = {"uvicorn": HttpToolsProtocol, "keyhouse": LimitedHttpProtocol}
    times: dict[str, list[float]] = {name: [] for name in classes}
    for round_ in range(rounds):
        # Each first in every other round: neither pays for what the other left behind.
        for name in sorted(classes, reverse=round_ % 2 == 1):
            times[name].append(await microseconds_per_request(classes[name], requests))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    times = uvloop.run(measure(args.rounds, args.requests))
    for name, values in times.items():
        quartile = statistics.quantiles(values, n=4)[0]
        print(f"{name:9} best {min(values):6.2f} µs/request, first quartile {quartile:6.2f}")
    added = min(times["keyhouse"]) - min(times["uvicorn"])
    print(f"the limits add {added:.2f} µs per request (best rounds)")


if __name__ == "__main__":
    main()
