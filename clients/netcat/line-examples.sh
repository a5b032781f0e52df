#!/usr/bin/env bash
# One-liners for the line port (protocol-spec/line.md), runnable as a smoke test:
#   line-examples.sh [PORT]      (default 10002)
# Each command half-closes after sending (nc -N) so netcat exits once the server answers.
set -euo pipefail
port=${1:-10002}
nc_send() { nc -N 127.0.0.1 "$port"; }

printf 'upper hello\n' | nc_send                                  # OK HELLO
printf 'cummingsify HERE IS MY POEM\n' | nc_send                  # OK here is my poem
printf 'cummingsify\nLINE ONE\n\nLINE THREE\n.\n' | nc_send       # a block request, block reply
printf 'reverse stressed\nrot13 uryyb\n' | nc_send                # pipelined: OK desserts, OK hello
printf 'list\n' | nc_send                                         # the transform names
printf 'nosuch x\n' | nc_send                                     # ERR unknown_transform ...
