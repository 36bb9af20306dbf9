#!/usr/bin/env bash
# Start a real single-node SLURM (slurmctld + slurmd + munge) on this machine, for the SLURM
# integration test and for trying profiles/slurm locally. Debian 12 packages (slurm 22.05).
# One node at 127.0.0.1 with all CPUs, most of the memory and one fake GPU (gres on /dev/null),
# so --gpus / --gres requests schedule without a device. No accounting: use the plugin with
# --slurm-status-command squeue --slurm-no-account (profiles/slurm-test does).
#
#   tools/slurm/start.sh [STATE_DIR]      (default /tmp/cellmoa-slurm; stop with tools/slurm/stop.sh)
set -euo pipefail
STATE=${1:-/tmp/cellmoa-slurm}
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
  else
    echo "start.sh: slurmctld/munged are not installed and cannot be installed here (needs root + apt)" >&2
    exit 2
  fi
fi
mkdir -p "$STATE"/{spool,ctld,log}
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(awk '/MemAvailable/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)

# munge: key 0600 owned by munge, socket dir owned by munge, daemon run as munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 0600 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged --force
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

mkdir -p /etc/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=cellmoa
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
# job records kept an hour (default 300 s): tests/test_slurm.py reads them after runs of several minutes
MinJobAge=3600
MailProg=/bin/true
GresTypes=gpu
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SchedulerParameters=sched_interval=1
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM_MB} Gres=gpu:1 State=UNKNOWN
PartitionName=main Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
CONF
echo "NodeName=${HOST} Name=gpu Count=1 File=/dev/null" > /etc/slurm/gres.conf

if [ -f "$STATE/slurmctld.pid" ] && kill -0 "$(cat "$STATE/slurmctld.pid")" 2>/dev/null; then
  echo "slurmctld already running"
else
  setsid slurmctld -D -i > "$STATE/log/slurmctld.out" 2>&1 < /dev/null &
  echo $! > "$STATE/slurmctld.pid"
fi
if [ -f "$STATE/slurmd.pid" ] && kill -0 "$(cat "$STATE/slurmd.pid")" 2>/dev/null; then
  echo "slurmd already running"
else
  setsid slurmd -D > "$STATE/log/slurmd.out" 2>&1 < /dev/null &
  echo $! > "$STATE/slurmd.pid"
fi
for _ in $(seq 60); do
  state=$(sinfo -h -N -o '%T' 2>/dev/null | head -1 || true)
  case "$state" in
    idle*|mixed*|allocated*) echo "SLURM is up: node $HOST $state, $CPUS CPUs, ${MEM_MB} MB, gpu:1 (state in $STATE)"; exit 0 ;;
    drain*|down*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
  esac
  sleep 0.5
done
echo "start.sh: the SLURM node did not become idle; logs in $STATE/log" >&2
tail -n 20 "$STATE"/log/*.log >&2 || true
exit 1
