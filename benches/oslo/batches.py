"""Timed batches of calls, as the overhead run's Rust runner makes them.

A batch runs for a time slice (at least `min_calls` calls) or, when `calls` is set, for
exactly that many calls. `call` is a function making one checked call; it raises on error.
"""
import sys
import threading
import time


def sequential(call, slice_ns, calls, min_calls):
    """One call at a time: every latency in ns, the wall time, the failed calls."""
    latencies, errors, n = [], 0, 0
    t0 = time.perf_counter_ns()
    deadline = t0 + slice_ns
    while (n < calls) if calls is not None else (n < min_calls or time.perf_counter_ns() < deadline):
        t = time.perf_counter_ns()
        try:
            call()
            latencies.append(time.perf_counter_ns() - t)
        except Exception as e:
            # E.g. the broker restarting under us: count it, do not spin.
            print(f"oslo call failed: {e!r}", file=sys.stderr)
            errors += 1
            time.sleep(0.01)
        n += 1
    return {"latencies_ns": latencies, "wall_ns": time.perf_counter_ns() - t0, "errors": errors}


class _Batch:
    """One concurrent batch's shared state: calls started, done, failed."""

    def __init__(self, slice_ns, calls, min_calls):
        self.calls, self.min_calls = calls, min_calls
        self.deadline = time.perf_counter_ns() + slice_ns
        self.lock = threading.Lock()
        self.started = self.ok = self.failed = 0

    def next(self):
        """Whether the calling worker makes one more call."""
        with self.lock:
            i = self.started
            self.started += 1
        if self.calls is not None:
            return i < self.calls
        return i < self.min_calls or time.perf_counter_ns() < self.deadline

    def count(self, ok):
        with self.lock:
            if ok:
                self.ok += 1
            else:
                self.failed += 1


class InFlight:
    """`n` threads started once, making calls together batch after batch, so that no batch
    pays for starting threads."""

    def __init__(self, call, n):
        self.call, self.n = call, n
        self.gate = threading.Barrier(n + 1)  # passed twice per batch: start, end
        self.batch_state = None
        for _ in range(n):
            threading.Thread(target=self._worker, daemon=True).start()

    def _worker(self):
        while True:
            self.gate.wait()
            b = self.batch_state
            while b.next():
                try:
                    self.call()
                    b.count(True)
                except Exception as e:
                    # Count it and stop this worker: a broken setup must not spin.
                    print(f"oslo call failed: {e!r}", file=sys.stderr)
                    b.count(False)
                    break
            self.gate.wait()

    def batch(self, slice_ns, calls, min_calls):
        """Calls completed with `n` in flight, the wall time, the failed calls."""
        self.batch_state = _Batch(slice_ns, calls, max(min_calls, self.n))
        t0 = time.perf_counter_ns()
        self.gate.wait()  # the workers start
        self.gate.wait()  # ... and are all done
        wall = time.perf_counter_ns() - t0
        b = self.batch_state
        return {"calls": b.ok, "wall_ns": wall, "errors": b.failed}
