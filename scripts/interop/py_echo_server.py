#!/usr/bin/env python3
"""Python `websockets` echo server for Tether's interop tests.

    py_echo_server.py PORT [--deflate]

Listens on 127.0.0.1:PORT (0 picks a free port), echoes every text and binary message
unchanged, forever. Messages may be up to 64 MiB. permessage-deflate (RFC 7692) is
accepted only with --deflate (websockets' defaults: 12-bit windows both ways).

Prints one readiness line to stderr once listening:

    py-echo-server listening on 127.0.0.1:PORT (deflate on|off)
"""

import argparse
import asyncio
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

MAX_SIZE = 64 << 20


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass


async def main(port: int, deflate: bool) -> None:
    async with serve(
        echo,
        "127.0.0.1",
        port,
        max_size=MAX_SIZE,
        compression="deflate" if deflate else None,
    ) as server:
        bound = server.sockets[0].getsockname()[1]
        print(
            f"py-echo-server listening on 127.0.0.1:{bound} (deflate {'on' if deflate else 'off'})",
            file=sys.stderr,
            flush=True,
        )
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--deflate", action="store_true")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.port, args.deflate))
    except KeyboardInterrupt:
        pass
