#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, to prove profiles/slurm on a real scheduler.
#
#   profiles/slurm/local-cluster.sh install   # Debian packages: slurm-wlm, slurmdbd, munge, mariadb-server
#   profiles/slurm/local-cluster.sh start     # munged, mariadbd, slurmdbd (for sacct), slurmctld, slurmd
#   profiles/slurm/local-cluster.sh status    # sinfo + sacct
#   profiles/slurm/local-cluster.sh stop      # cancel jobs, stop every daemon it started (and only those)
#   profiles/slurm/local-cluster.sh pids      # the daemons it started: "<name> <pid>"
#
# Needs root (it writes /etc/slurm/slurm.conf: srun inside a job reads only that path).
# Controller, node daemon and accounting daemon all run on localhost; the node offers the
# machine's CPUs and 80 % of its memory in one partition `main` (no GPUs: a GPU request must be
# refused before submission, which tests/test_slurm.py checks). State and logs live in $STATE
# (default /run/morphotx-slurm, where only root can create it; it must be a real directory of this
# user that no one else can write, see check_state). The accounting database's password is made
# once, kept in $STATE (mode 600) and never put on a command line (visible in ps): the SQL that
# sets it goes to MariaDB on stdin, and slurmdbd reads it from slurmdbd.conf (mode 600 from the
# moment it is created).
# Used by tests/test_slurm.py, which skips with the reason when `install` or `start` fails.
set -euo pipefail

STATE=${MORPHOTX_SLURM_STATE:-/run/morphotx-slurm}
CLUSTER=morphotx
DB_SOCK=$STATE/db/mysqld.sock

log() { echo "[local-cluster] $*" >&2; }
die() { log "error: $*"; exit 1; }

check_state() {  # $STATE: made mode 711 if absent, else it must be our own directory that only we can write
  if [ ! -e "$STATE" ] && [ ! -L "$STATE" ]; then
    mkdir -p "$(dirname "$STATE")"
    mkdir -m 711 "$STATE"  # fails if someone else made it in between
  fi
  if [ -L "$STATE" ] || [ ! -d "$STATE" ]; then
    die "$STATE is not a directory (or is a symlink); remove it or set MORPHOTX_SLURM_STATE"
  fi
  [ "$(stat -c %u "$STATE")" = "$(id -u)" ] \
    || die "$STATE belongs to uid $(stat -c %u "$STATE"), not to us; remove it or set MORPHOTX_SLURM_STATE"
  case "$(stat -c %A "$STATE")" in
    ?????w????|????????w?) die "$STATE is writable by group or others; chmod go-w it or set MORPHOTX_SLURM_STATE" ;;
  esac
}

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

db_password() {  # a random accounting-database password, made once per state folder (mode 600)
  local f=$STATE/db.pass
  if [ ! -s "$f" ]; then
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$f")
  fi
  cat "$f"
}

write_configs() {
  local cpus mem
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
  mkdir -p /etc/slurm "$STATE"/{state,spool,log,db}
  chmod 700 "$STATE"/{state,spool,log}
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
  # it holds the password: created mode 600 (umask), never readable by others in between
  rm -f /etc/slurm/slurmdbd.conf
  (umask 077 && cat > /etc/slurm/slurmdbd.conf) <<EOF
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
StoragePass=$(db_password)
StorageLoc=slurm_acct_db
EOF
}

started() {  # record a daemon this script started: started <name> <pid file>
  local pid
  for _ in $(seq 1 50); do [ -s "$2" ] && break; sleep 0.2; done
  pid=$(cat "$2" 2>/dev/null) || die "$1 wrote no pid file $2"
  echo "$1 $pid" >> "$STATE/started"
}

ours() {  # start <name> unless ours runs; refuse a foreign one (we would talk to the wrong cluster)
  local name=$1 pidfile=$2; shift 2
  if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then return 0; fi
  if pgrep -x "$name" >/dev/null; then
    die "a $name not started by this script is running (pid $(pgrep -x "$name" | head -1)); stop it first"
  fi
  "$@"
  started "$name" "$pidfile"
}

start() {
  need_root
  command -v slurmctld >/dev/null || die "SLURM is not installed; run: $0 install"
  check_state
  write_configs
  touch "$STATE/started"
  # munge: the key comes with the package; the daemon runs as the munge user. A munged that is
  # already running (e.g. started by the package) is used as it is and left running by `stop`.
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
  [ -s /etc/munge/munge.key ] || { mungekey --create >/dev/null 2>&1 || /usr/sbin/create-munge-key -f; }
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  if ! (munge -n | unmunge) >/dev/null 2>&1; then
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged
    started munged /run/munge/munged.pid
  fi
  wait_for 10 munged bash -c 'munge -n | unmunge'
  # our own MariaDB on its own socket and port 3316 (a system MariaDB on 3306 is left alone)
  if [ ! -d "$STATE/db/mysql" ]; then
    mariadb-install-db --user=mysql --datadir="$STATE/db" --auth-root-authentication-method=socket >/dev/null
  fi
  chown -R mysql:mysql "$STATE/db"
  if ! mariadb --socket="$DB_SOCK" -e "select 1" >/dev/null 2>&1; then
    rm -f "$STATE/db/mariadb.pid"
    (mariadbd --user=mysql --datadir="$STATE/db" --socket="$DB_SOCK" --port=3316 --bind-address=127.0.0.1 \
      --pid-file="$STATE/db/mariadb.pid" --log-error="$STATE/db/mariadb.log" >/dev/null 2>&1 &)
    wait_for 30 mariadbd mariadb --socket="$DB_SOCK" -e "select 1"
    started mariadbd "$STATE/db/mariadb.pid"
  fi
  # the SQL that sets the password goes in on stdin (a -e argument is visible in ps)
  local pass
  pass=$(db_password)
  mariadb --socket="$DB_SOCK" --batch <<SQL
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$pass';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;
SQL
  ours slurmdbd "$STATE/slurmdbd.pid" slurmdbd
  wait_for 30 slurmdbd bash -c 'timeout 5 sacctmgr -n show cluster'
  if ! timeout 10 sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
    timeout 20 sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
  ours slurmctld "$STATE/slurmctld.pid" slurmctld
  wait_for 30 slurmctld scontrol ping
  ours slurmd "$STATE/slurmd.pid" slurmd
  wait_for 30 "node localhost" bash -c 'sinfo -h -N -o %T | grep -Eq "^(idle|mixed|allocated)"'
  log "up: $(sinfo -h -o '%P %D %T %C')"
}

stop() {  # stop the daemons this script started (newest first), nothing else
  need_root
  if [ ! -e "$STATE" ] && [ ! -L "$STATE" ]; then log "nothing to stop"; return 0; fi
  check_state
  [ -s "$STATE/started" ] || { log "nothing to stop"; return 0; }
  # cancel the jobs of this script's own cluster only (not every job of the user on the machine)
  scancel --full --clusters="$CLUSTER" --partition=main >/dev/null 2>&1 || true
  local name pid left=""
  while read -r name pid; do
    if [ "$name" = mariadbd ]; then
      mariadb-admin --socket="$DB_SOCK" shutdown >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    else
      kill "$pid" 2>/dev/null || true
    fi
  done < <(tac "$STATE/started")
  for _ in $(seq 1 75); do
    left=$(while read -r name pid; do kill -0 "$pid" 2>/dev/null && echo "$name"; done < "$STATE/started"; true)
    [ -z "$left" ] && break
    sleep 0.2
  done
  if [ -n "$left" ]; then
    while read -r name pid; do kill -9 "$pid" 2>/dev/null || true; done < "$STATE/started"
    log "killed after 15 s: $left"
  fi
  rm -f "$STATE/started"
  log "stopped"
}

pids() {  # the daemons this script started and still owns: "<name> <pid>" per line
  [ -e "$STATE" ] || [ -L "$STATE" ] || return 0
  check_state
  [ -s "$STATE/started" ] && cat "$STATE/started" || true
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
  pids) pids ;;
  *) echo "usage: $0 install|start|stop|status|pids" >&2; exit 2 ;;
esac
