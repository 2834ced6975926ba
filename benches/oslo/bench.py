"""Peer baseline: oslo.messaging's echo call and cast on the same RabbitMQ broker.

Usage: bench.py [--url URL] [--sizes 100,1024,65536] [--seconds S] [--in-flight N] [--json]
       bench.py --driver --size BYTES [--url URL]

The echo server runs in a child process (threading executor), the client in this one.

Standalone, it prints calls/s sequential and with N calls in flight, p50/p99, and casts/s,
per size. With --driver it is a row of `overhead --amqp`: it reads one JSON command per
line on stdin and answers each with one JSON line on stdout (see driver.py).
"""
import argparse
import json
import os
import subprocess
import sys
import time
import uuid

import warnings

warnings.filterwarnings("ignore")

from oslo_config import cfg  # noqa: E402
import oslo_messaging as messaging  # noqa: E402

from batches import InFlight, sequential  # noqa: E402


class Echo:
    def echo(self, ctxt, data):
        return data

    def ping(self, ctxt, data):
        return None


def transport(url):
    # The global config: oslo.messaging registers some of its options (tracing) there.
    conf = cfg.CONF
    conf([], project="sealrpc-bench")
    return messaging.get_rpc_transport(conf, url=url)


def serve(url, topic):
    t = transport(url)
    target = messaging.Target(topic=topic, server="bench")
    server = messaging.get_rpc_server(t, target, [Echo()], executor="threading")
    server.start()
    print("ready", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    server.stop()
    server.wait()


def start_server(url):
    """The echo server in a child process; returns (process, client). The server stops
    when its stdin closes, so it never outlives this process."""
    topic = "oslo-bench-" + uuid.uuid4().hex[:8]
    srv = subprocess.Popen(
        [sys.executable, "-W", "ignore", __file__, "--url", url, "--serve", topic],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    if srv.stdout.readline().strip() != "ready":
        stop_server(srv)
        raise RuntimeError("oslo echo server did not start")
    client = messaging.get_rpc_client(transport(url), messaging.Target(topic=topic, server="bench"))
    return srv, client


def stop_server(srv):
    srv.stdin.close()
    try:
        srv.wait(timeout=30)
    except subprocess.TimeoutExpired:
        srv.kill()
        srv.wait()


def echo_call(client, size):
    """One echo call of `size` bytes, checked."""
    cctx = client.prepare(timeout=30)
    data = "x" * size

    def call():
        if len(cctx.call({}, "echo", data=data)) != size:
            raise RuntimeError("echo reply of the wrong size")

    return call


def quantile(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, round((len(v) - 1) * q))]


def measure(client, size, seconds, in_flight):
    call = echo_call(client, size)
    for _ in range(20):
        call()
    slice_ns = int(seconds * 1e9)
    seq = sequential(call, slice_ns, None, 10)
    lat = seq["latencies_ns"]
    conc = InFlight(call, in_flight).batch(slice_ns, None, in_flight)

    data = "x" * size
    cctx = client.prepare(timeout=30)
    casts = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        cctx.cast({}, "ping", data=data)
        casts += 1
    cast_rate = casts / (time.perf_counter() - t0)
    return {
        "bytes": size,
        "calls_seq": len(lat),
        "p50_us": quantile(lat, 0.5) / 1e3,
        "p99_us": quantile(lat, 0.99) / 1e3,
        "seq_calls_per_s": len(lat) * 1e9 / seq["wall_ns"],
        "conc_calls_per_s": conc["calls"] * 1e9 / conc["wall_ns"],
        "in_flight": in_flight,
        "casts_per_s": cast_rate,
    }


def standalone(a):
    srv, client = start_server(a.url)
    try:
        rows = [measure(client, int(s), a.seconds, a.in_flight) for s in a.sizes.split(",")]
    finally:
        stop_server(srv)
    if a.json:
        print(json.dumps({"oslo.messaging": version(), "rows": rows}, indent=2))
    else:
        print("oslo.messaging echo on the same broker (server: threading executor, separate process)")
        print(f"{'size':>8} {'p50 us':>9} {'p99 us':>9} {'seq/s':>8} {'@%d/s' % a.in_flight:>8} {'casts/s':>8}")
        for r in rows:
            print(f"{r['bytes']:>8} {r['p50_us']:>9.1f} {r['p99_us']:>9.1f} {r['seq_calls_per_s']:>8.0f} "
                  f"{r['conc_calls_per_s']:>8.0f} {r['casts_per_s']:>8.0f}")


def version():
    try:
        from importlib.metadata import version as dist_version
        return dist_version("oslo.messaging")
    except Exception:
        return ""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", default=os.environ.get("OSLO_URL", "rabbit://guest:guest@127.0.0.1:5672/"))
    p.add_argument("--sizes", default="100,1024,65536")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--in-flight", type=int, default=32)
    p.add_argument("--json", action="store_true")
    p.add_argument("--driver", action="store_true", help="serve the overhead run's commands")
    p.add_argument("--size", type=int, default=1024, help="payload bytes (--driver)")
    p.add_argument("--serve", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve:
        serve(a.url, a.serve)
    elif a.driver:
        from driver import drive
        sys.exit(drive(a.url, a.size, start_server, stop_server, echo_call, version()))
    else:
        standalone(a)


if __name__ == "__main__":
    main()
