"""Peer baseline: oslo.messaging's echo call and cast on the same RabbitMQ broker.

Usage: bench.py [--url URL] [--sizes 100,1024,65536] [--seconds S] [--in-flight N] [--json]
The echo server runs in a child process (threading executor), the client in this one.
Prints calls/s sequential and with N calls in flight, p50/p99, and casts/s, per size.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid

import warnings

warnings.filterwarnings("ignore")

from oslo_config import cfg  # noqa: E402
import oslo_messaging as messaging  # noqa: E402


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


def quantile(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, round((len(v) - 1) * q))]


def measure(client, size, seconds, in_flight):
    data = "x" * size
    cctx = client.prepare(timeout=30)
    for _ in range(20):
        cctx.call({}, "echo", data=data)
    lat = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds or len(lat) < 10:
        t = time.perf_counter()
        r = cctx.call({}, "echo", data=data)
        lat.append(time.perf_counter() - t)
        assert len(r) == size
    seq = len(lat) / (time.perf_counter() - t0)

    count = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker():
        while time.perf_counter() < deadline:
            cctx.call({}, "echo", data=data)
            with lock:
                count[0] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(in_flight)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    conc = count[0] / (time.perf_counter() - t0)

    casts = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        cctx.cast({}, "ping", data=data)
        casts += 1
    cast_rate = casts / (time.perf_counter() - t0)
    return {
        "bytes": size,
        "calls_seq": len(lat),
        "p50_us": quantile(lat, 0.5) * 1e6,
        "p99_us": quantile(lat, 0.99) * 1e6,
        "seq_calls_per_s": seq,
        "conc_calls_per_s": conc,
        "in_flight": in_flight,
        "casts_per_s": cast_rate,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", default=os.environ.get("OSLO_URL", "rabbit://guest:guest@127.0.0.1:5672/"))
    p.add_argument("--sizes", default="100,1024,65536")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--in-flight", type=int, default=32)
    p.add_argument("--json", action="store_true")
    p.add_argument("--serve", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve:
        serve(a.url, a.serve)
        return
    topic = "oslo-bench-" + uuid.uuid4().hex[:8]
    srv = subprocess.Popen(
        [sys.executable, __file__, "--url", a.url, "--serve", topic],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        if srv.stdout.readline().strip() != "ready":
            sys.exit("oslo echo server did not start")
        t = transport(a.url)
        client = messaging.get_rpc_client(t, messaging.Target(topic=topic, server="bench"))
        rows = [measure(client, int(s), a.seconds, a.in_flight) for s in a.sizes.split(",")]
    finally:
        srv.stdin.close()
        srv.wait(timeout=30)
    if a.json:
        print(json.dumps({"oslo.messaging": messaging.__version__ if hasattr(messaging, "__version__") else "", "rows": rows}, indent=2))
    else:
        print("oslo.messaging echo on the same broker (server: threading executor, separate process)")
        print(f"{'size':>8} {'p50 us':>9} {'p99 us':>9} {'seq/s':>8} {'@%d/s' % a.in_flight:>8} {'casts/s':>8}")
        for r in rows:
            print(f"{r['bytes']:>8} {r['p50_us']:>9.1f} {r['p99_us']:>9.1f} {r['seq_calls_per_s']:>8.0f} "
                  f"{r['conc_calls_per_s']:>8.0f} {r['casts_per_s']:>8.0f}")


if __name__ == "__main__":
    main()
