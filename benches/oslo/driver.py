"""`bench.py --driver`: oslo.messaging as a row of `overhead --amqp`'s interleaved rounds.

One JSON command per line on stdin, one JSON reply per line on stdout:

  (on start)                                           {"reply": "ready", "pid", "server_pid", "version"}
  {"cmd": "warmup", "calls": N, "in_flight": M}        {"reply": "warmup", "calls"}
      N sequential calls, then 2 x M calls with M in flight (opens oslo's connections,
      starts the M threads); any failure is an error
  {"cmd": "sequential", "slice_ns", "calls", "min_calls"}
                                                       {"reply": "sequential", "latencies_ns", "wall_ns", "errors"}
  {"cmd": "concurrent", "in_flight", "slice_ns", "calls", "min_calls"}
                                                       {"reply": "concurrent", "calls", "wall_ns", "errors"}
  {"cmd": "quit"}                                      (exits)

`calls` null means: run for `slice_ns`, at least `min_calls` calls. A command that fails
is answered {"reply": "error", "message"} (details on stderr). The driver exits on "quit"
or when its stdin closes, and stops the echo server child on the way out.
"""
import json
import logging
import os
import sys
import traceback

from batches import InFlight, sequential


def drive(url, size, start_server, stop_server, echo_call, version):
    # Errors only: with 32 calls in flight oslo warns, as expected, about its reply queues
    # and its connection pool (30 by default), on every batch.
    logging.basicConfig(level=logging.ERROR)
    # Replies go to the real stdout; anything else printing to fd 1 lands on stderr.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def reply(kind, **fields):
        replies.write(json.dumps({"reply": kind, **fields}) + "\n")
        replies.flush()

    try:
        srv, client = start_server(url)
    except Exception as e:
        traceback.print_exc()
        reply("error", message=f"cannot start oslo.messaging: {e!r}")
        return 1
    try:
        call = echo_call(client, size)
        reply("ready", pid=os.getpid(), server_pid=srv.pid, version=version)
        pools = {}

        def pool(n):
            if n not in pools:
                pools[n] = InFlight(call, n)
            return pools[n]

        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                cmd = json.loads(line)
                kind = cmd["cmd"]
                if kind == "quit":
                    break
                if kind == "warmup":
                    reply("warmup", calls=warm_up(call, pool, cmd["calls"], cmd["in_flight"]))
                elif kind == "sequential":
                    batch = sequential(call, cmd["slice_ns"], cmd["calls"], cmd["min_calls"])
                    reply("sequential", **batch)
                elif kind == "concurrent":
                    batch = pool(cmd["in_flight"]).batch(cmd["slice_ns"], cmd["calls"], cmd["min_calls"])
                    reply("concurrent", **batch)
                else:
                    raise ValueError(f"unknown command {kind!r}")
            except Exception as e:
                traceback.print_exc()
                reply("error", message=repr(e))
    finally:
        stop_server(srv)
    return 0


def warm_up(call, pool, calls, in_flight):
    for _ in range(calls):
        call()
    done = calls
    if in_flight > 0:
        batch = pool(in_flight).batch(0, 2 * in_flight, 0)
        if batch["errors"]:
            raise RuntimeError(f"{batch['errors']} calls failed with {in_flight} in flight")
        done += batch["calls"]
    return done
