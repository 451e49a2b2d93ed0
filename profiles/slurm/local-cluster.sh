#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, to prove profiles/slurm on a real scheduler.
#
#   profiles/slurm/local-cluster.sh install   # Debian packages: slurm-wlm, slurmdbd, munge, mariadb-server
#   profiles/slurm/local-cluster.sh start     # munged, mariadbd, slurmdbd (for sacct), slurmctld, slurmd
#   profiles/slurm/local-cluster.sh status    # sinfo + sacct
#   profiles/slurm/local-cluster.sh stop      # cancel jobs, stop every daemon it started
#
# Needs root (it writes /etc/slurm/slurm.conf: srun inside a job reads only that path).
# Controller, node daemon and accounting daemon all run on localhost; the node offers the
# machine's CPUs and 80 % of its memory in one partition `main` (no GPUs: a GPU request must be
# refused before submission, which tests/test_slurm.py checks). State and logs live in $STATE.
# Used by tests/test_slurm.py, which skips with the reason when `install` or `start` fails.
set -euo pipefail

STATE=${MORPHOTX_SLURM_STATE:-/tmp/morphotx-slurm}
CLUSTER=morphotx
DB_SOCK=$STATE/db/mysqld.sock

DAEMONS="slurmd slurmctld slurmdbd mariadbd munged"

running() {  # prints the daemons still running; false when none
  local d found=1
  for d in $DAEMONS; do pgrep -x "$d" >/dev/null && { echo "$d"; found=0; }; done
  return $found
}

log() { echo "[local-cluster] $*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "run as root (writes /etc/slurm, starts daemons)"; }

wait_for() {  # wait_for <seconds> <description> <command...>
  local secs=$1 what=$2; shift 2
  for _ in $(seq 1 "$((secs * 5))"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "$what did not come up within ${secs}s (logs: $STATE/log, $STATE/db/mariadb.log)"
}

install() {
  need_root
  if command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null && command -v munged >/dev/null \
     && command -v mariadbd >/dev/null; then
    log "packages already installed"; return 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -qq || die "apt-get update failed (no Debian mirror reachable?)"
  timeout 600 apt-get install -y -qq --no-install-recommends slurm-wlm slurmdbd munge mariadb-server \
    >/dev/null || die "apt-get install slurm-wlm slurmdbd munge mariadb-server failed"
}

write_configs() {
  local cpus mem
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
  mkdir -p /etc/slurm "$STATE"/{state,spool,log,db}
  cat > /etc/slurm/slurm.conf <<EOF
# written by profiles/slurm/local-cluster.sh (single-node test cluster)
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
ReturnToService=2
MpiDefault=none
MinJobAge=300
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  cat > /etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
DebugLevel=info
LogFile=$STATE/log/slurmdbd.log
PidFile=$STATE/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3316
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
  chmod 600 /etc/slurm/slurmdbd.conf
}

start() {
  need_root
  command -v slurmctld >/dev/null || die "SLURM is not installed; run: $0 install"
  write_configs
  # munge: the key comes with the package; the daemon runs as the munge user
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
  [ -s /etc/munge/munge.key ] || { mungekey --create >/dev/null 2>&1 || /usr/sbin/create-munge-key -f; }
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
  wait_for 10 munged bash -c 'munge -n | unmunge'
  # MariaDB on a socket and port 3316 (not the usual 3306, to leave a system MariaDB alone), data under $STATE/db
  if [ ! -d "$STATE/db/mysql" ]; then
    mariadb-install-db --user=mysql --datadir="$STATE/db" --auth-root-authentication-method=socket >/dev/null
  fi
  chown -R mysql:mysql "$STATE/db"
  if ! pgrep -x mariadbd >/dev/null; then
    (mariadbd --user=mysql --datadir="$STATE/db" --socket="$DB_SOCK" --port=3316 --bind-address=127.0.0.1 \
      --pid-file="$STATE/db/mariadb.pid" --log-error="$STATE/db/mariadb.log" >/dev/null 2>&1 &)
  fi
  wait_for 30 mariadbd mariadb --socket="$DB_SOCK" -e "select 1"
  mariadb --socket="$DB_SOCK" -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  pgrep -x slurmdbd >/dev/null || slurmdbd
  wait_for 30 slurmdbd bash -c 'timeout 5 sacctmgr -n show cluster'
  if ! timeout 10 sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
    timeout 20 sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
  pgrep -x slurmctld >/dev/null || slurmctld
  wait_for 30 slurmctld scontrol ping
  pgrep -x slurmd >/dev/null || slurmd
  wait_for 30 "node localhost" bash -c 'sinfo -h -N -o %T | grep -Eq "^(idle|mixed|allocated)"'
  log "up: $(sinfo -h -o '%P %D %T %C')"
}

stop() {
  need_root
  scancel --full --user=root >/dev/null 2>&1 || true
  for d in slurmd slurmctld slurmdbd; do pkill -x "$d" 2>/dev/null || true; done
  if pgrep -x mariadbd >/dev/null; then
    mariadb-admin --socket="$DB_SOCK" shutdown 2>/dev/null || pkill -x mariadbd || true
  fi
  pkill -x munged 2>/dev/null || true
  for _ in $(seq 1 50); do
    running >/dev/null || { log "stopped"; return 0; }
    sleep 0.2
  done
  for d in $DAEMONS; do pkill -9 -x "$d" 2>/dev/null || true; done
  log "stopped (killed)"
}

status() {
  sinfo
  sacct -X -o JobID,JobName%30,State,ExitCode,Elapsed -S now-1days
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
