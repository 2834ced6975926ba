#!/usr/bin/env bash
# A fake oslo.messaging driver for the protocol tests (tests/oslo_driver.rs): speaks the
# protocol of benches/oslo/driver.py without Python or a broker. Every call "takes" 1000 ns;
# a batch of `"calls": N` makes N calls.
#
#   fake_oslo_driver.sh ok | garbage | exit | failing-batches | dies-on-batch
set -u
mode="${1:-ok}"
case "$mode" in
    garbage)
        echo "Traceback (most recent call last):"
        read -r _ # until stdin closes
        exit 1 ;;
    exit)
        echo "ModuleNotFoundError: No module named 'oslo_messaging'" >&2
        exit 3 ;;
esac
echo "{\"reply\": \"ready\", \"pid\": $$, \"server_pid\": $$, \"version\": \"fake\"}"
while IFS= read -r line; do
    calls=0
    [[ $line =~ \"calls\":([0-9]+) ]] && calls=${BASH_REMATCH[1]}
    case "$line" in
        *'"cmd":"quit"'*) exit 0 ;;
        *'"cmd":"warmup"'*) echo "{\"reply\": \"warmup\", \"calls\": $calls}" ;;
        *'"cmd":"sequential"'* | *'"cmd":"concurrent"'*)
            if [ "$mode" = failing-batches ]; then
                echo "{\"reply\": \"error\", \"message\": \"no broker\"}"
            elif [ "$mode" = dies-on-batch ]; then
                echo "the fake driver died" >&2
                exit 4
            elif [[ $line == *'"cmd":"sequential"'* ]]; then
                lat=""
                for ((i = 0; i < calls; i++)); do lat="$lat${lat:+, }1000"; done
                echo "{\"reply\": \"sequential\", \"latencies_ns\": [$lat], \"wall_ns\": $((calls * 1000)), \"errors\": 0}"
            else
                echo "{\"reply\": \"concurrent\", \"calls\": $calls, \"wall_ns\": $((calls * 500)), \"errors\": 0}"
            fi ;;
        *) echo "{\"reply\": \"error\", \"message\": \"unknown command\"}" ;;
    esac
done
