#!/usr/bin/env bash
# Peer baseline: installs oslo.messaging (from PyPI) into a virtualenv and measures its echo
# call/cast on the same broker as `overhead --amqp`, so that the report can state sealrpc's
# calls/s as a multiple of oslo.messaging's, measured the same day on the same machine.
#
#   benches/oslo/run.sh [--url rabbit://guest:guest@127.0.0.1:5672/] [--sizes 100,1024,65536]
#                       [--seconds 3] [--in-flight 32] [--json]
#   benches/oslo/run.sh --driver --size BYTES [--url URL]
#
# The second form is how `overhead --amqp` runs oslo.messaging as a row of its interleaved
# rounds: JSON commands on stdin, JSON replies on stdout (benches/oslo/driver.py).
# The virtualenv goes to $OSLO_VENV (default: target/oslo-venv under the repository); what
# creating it prints goes to stderr, so that stdout stays the report (or the protocol).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${OSLO_VENV:-$root/target/oslo-venv}"
if [ ! -x "$venv/bin/python" ]; then
    {
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --upgrade pip
        "$venv/bin/pip" install --quiet "oslo.messaging"
    } >&2
fi
exec "$venv/bin/python" -W ignore "$here/bench.py" "$@"
