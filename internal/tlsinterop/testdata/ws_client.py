"""A wss:// client on the `websockets` package (Debian's
python3-websockets), run by python_test.go:

    python3 ws_client.py URL CA_FILE TLS_VERSION

It trusts CA_FILE (an ssl context), speaks TLS_VERSION (1.2 or 1.3),
echoes a text message, a binary one and a text message sent as five
fragments (send() of a list), closes 1000 and prints one JSON line with
what it saw. Exit status 0 only if all of it went as expected; it gives
up after 20 s.
"""
import asyncio
import json
import os
import ssl
import sys

import websockets


async def session(url, ca_file, version, res):
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ctx.maximum_version = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[version]
    async with websockets.connect(url, ssl=ctx, compression=None, open_timeout=5, close_timeout=5) as ws:
        res["tls"] = ws.transport.get_extra_info("ssl_object").version()
        for name, msg in (("text", "héllo from python"), ("binary", os.urandom(1000))):
            await ws.send(msg)
            got = await ws.recv()
            if got != msg:
                raise AssertionError(f"{name}: echo differs: {got!r}")
            res["echoes"].append(name)
        parts = [f"fragment {i}; " for i in range(5)]
        await ws.send(parts)
        got = await ws.recv()
        if got != "".join(parts):
            raise AssertionError(f"fragmented: echo differs: {got!r}")
        res["echoes"].append("fragmented")
        await ws.close(1000, "bye")
        res["close_code"] = ws.close_code


def main():
    url, ca_file, version = sys.argv[1:4]
    res = {"websockets": websockets.__version__, "python": sys.version.split()[0], "ssl": ssl.OPENSSL_VERSION, "echoes": []}
    code = 1
    try:
        asyncio.run(asyncio.wait_for(session(url, ca_file, version, res), 20))
        code = 0 if res.get("close_code") == 1000 and len(res["echoes"]) == 3 else 1
    except BaseException as e:  # noqa: BLE001 - every failure is reported in the result
        res["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(res), flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
