#!/usr/bin/env bash
# Multi-process training:  bash tools/dist_train.sh CONFIG NUM_PROCESSES [train.py options]
# (NCCL on GPUs, gloo on a CPU-only machine; NNODES/NODE_RANK/MASTER_ADDR/PORT for several machines)
set -euo pipefail
exec bash "$(dirname "$0")/dist_run.sh" train.py "$2" "$1" "${@:3}"
