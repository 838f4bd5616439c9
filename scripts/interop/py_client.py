#!/usr/bin/env python3
"""Python `websockets` client for Tether's interop tests.

    py_client.py URL [--deflate]

Connects to an echo server at URL, offering permessage-deflate (RFC 7692) only with
--deflate (and then requires it to be negotiated). Sends text messages (valid UTF-8 with
1- to 4-byte characters) and binary messages of 0, 1, 125, 126, 65535, 65536 bytes, 1 MiB
and 8 MiB, one at a time, and checks that each comes back exactly, with the same type.
Then closes with 1000 and checks that the closing handshake completed (RFC 6455 §7.1):
both close frames 1000, and the server closed TCP before the close timeout.

Prints one summary line and exits 0, or prints the first mismatch and exits 1.
"""

import argparse
import asyncio
import random
import sys
import time

from websockets.asyncio.client import connect
from websockets.protocol import State

NAME = "py-client"
SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 8 << 20]
MAX_SIZE = 64 << 20
CLOSE_TIMEOUT = 5.0
# Characters of 1, 2, 3 and 4 bytes in UTF-8.
ALPHABET = "az ~éßЖ€中あ😀🎉"


class Mismatch(Exception):
    pass


def make_text(n: int, rng: random.Random) -> str:
    """Returns a string of exactly n UTF-8 bytes mixing 1- to 4-byte characters."""
    chunk = "".join(rng.choices(ALPHABET, k=16384)).encode()
    data = chunk * (n // len(chunk) + 1)
    end = n
    while end > 0 and data[end] & 0xC0 == 0x80:  # back off to a character boundary
        end -= 1
    text = (data[:end] + b"a" * (n - end)).decode()
    assert len(text.encode()) == n
    return text


def describe(value) -> str:
    kind = "text" if isinstance(value, str) else "binary"
    size = len(value.encode()) if isinstance(value, str) else len(value)
    return f"{kind} of {size} bytes"


async def run(url: str, deflate: bool) -> str:
    rng = random.Random(6455)
    async with connect(
        url,
        compression="deflate" if deflate else None,
        max_size=MAX_SIZE,
        proxy=None,
        close_timeout=CLOSE_TIMEOUT,
    ) as ws:
        names = [ext.name for ext in ws.protocol.extensions]
        negotiated = "permessage-deflate" in names
        if negotiated != deflate:
            raise Mismatch(f"permessage-deflate negotiated: {negotiated}, wanted {deflate} (extensions {names})")
        count = 0
        for size in SIZES:
            for payload in (make_text(size, rng), rng.randbytes(size)):
                await ws.send(payload)
                echo = await asyncio.wait_for(ws.recv(), 60)
                if type(echo) is not type(payload) or echo != payload:
                    raise Mismatch(f"sent {describe(payload)}, got back {describe(echo)} that differs")
                count += 1
        started = time.monotonic()
        await ws.close(1000)
        elapsed = time.monotonic() - started
        p = ws.protocol
        if ws.state is not State.CLOSED:
            raise Mismatch(f"connection state {ws.state.name} after close")
        if p.close_sent is None or p.close_sent.code != 1000:
            raise Mismatch(f"sent close frame {p.close_sent}")
        if p.close_rcvd is None:
            raise Mismatch("no close frame received from the server")
        if p.close_rcvd.code != 1000:
            raise Mismatch(f"server answered close with {p.close_rcvd.code} {p.close_rcvd.reason!r}")
        if elapsed >= CLOSE_TIMEOUT:
            raise Mismatch(f"server did not close TCP within {CLOSE_TIMEOUT} s of the closing handshake")
        header = ws.response.headers.get("Sec-WebSocket-Extensions")
        state = f"deflate negotiated ({header})" if negotiated else "no deflate"
        return f"{count} messages echoed exactly, {state}, clean close 1000"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--deflate", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()
    try:
        summary = asyncio.run(run(args.url, args.deflate))
    except Exception as e:  # any failure is a failed run, reported in one line
        print(f"interop {NAME} -> {args.url}: FAILED: {type(e).__name__}: {e}")
        return 1
    print(f"interop {NAME} -> {args.url}: {summary} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
