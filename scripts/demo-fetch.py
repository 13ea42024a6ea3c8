#!/usr/bin/env python3
"""scripts/demo's client: fetch URL; print a short reply, or how fast a large one came.

    python3 scripts/demo-fetch.py http://10.53.57.21:8021/
"""
import sys
import time
import urllib.request

url = sys.argv[1]
start = time.monotonic()
reply = urllib.request.urlopen(url, timeout=60)
size, head = 0, b""
while chunk := reply.read(1 << 16):
    if size < 1000:
        head += chunk
    size += len(chunk)
took = time.monotonic() - start
if size < 1000:
    print(url, "->", reply.status, head.decode().strip())
else:
    print("%s -> %d, %.1f MB in %.2f s: %.1f Mbit/s" % (url, reply.status, size / 1e6, took, size * 8 / took / 1e6))
