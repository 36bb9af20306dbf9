#!/usr/bin/env bash
# Stop the SLURM daemons started by tools/slurm/start.sh (by their PID files).
#   tools/slurm/stop.sh [STATE_DIR]      (default /tmp/cellmoa-slurm)
set -uo pipefail
STATE=${1:-/tmp/cellmoa-slurm}
for daemon in slurmd slurmctld; do
  pidfile="$STATE/$daemon.pid"
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null && echo "stopped $daemon ($pid)"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  fi
done
