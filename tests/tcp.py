"""TCP payload timing between two testenvs, for the tests, the kernel matrix and the benchmark.

    tcp.py sink ADDR [CONNECTIONS]       listen on ADDR port 5001, print "ready", then count what
                                         each connection sends and answer with the count
    tcp.py send ADDR BYTES [RUNS] [best] send BYTES to ADDR port 5001 RUNS times; print
                                         "TRANSFER BYTES SECONDS" a run (from the first byte sent
                                         to the sink's count coming back), or only the fastest

The tests embed this file and call sink() or send() after it (run with python3 -c, it does not
read its arguments).
"""
import socket
import sys
import time

PORT = 5001


def sink(addr, connections=1):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, PORT))
    s.listen(1)
    print("ready", flush=True)
    for _ in range(connections):
        c, _ = s.accept()
        n = 0
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            n += len(b)
        c.sendall(str(n).encode())
        c.close()


def send(addr, size, runs=1, best=False):
    data = b"x" * size
    times = []
    for _ in range(runs):
        c = socket.create_connection((addr, PORT), timeout=60)
        t0 = time.monotonic()
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        n = int(c.recv(64))
        times.append(time.monotonic() - t0)
        c.close()
        if not best:
            print("TRANSFER", n, times[-1], flush=True)
    if best:
        print("TRANSFER", n, min(times), flush=True)


if sys.argv[0] != "-c":
    mode, addr, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    if mode == "sink":
        sink(addr, int(rest[0]) if rest else 1)
    elif mode == "send":
        send(addr, int(rest[0]), int(rest[1]) if len(rest) > 1 else 1, rest[2:] == ["best"])
    else:
        sys.exit(f"tcp.py: unknown mode {mode!r} (sink or send)")
