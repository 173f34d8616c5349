#!/usr/bin/env bash
# up.sh DIR -- bring up a private single-node Slurm (munged + slurmctld + slurmd)
# entirely inside DIR, without systemd, as root. Idempotent: if the daemons recorded
# in DIR/run/*.pid are alive and the node answers, nothing is restarted.
#
# stdout: shell lines to eval, e.g.   eval "$(up.sh "$DIR")"
#   export SLURM_CONF=DIR/etc/slurm.conf    <- the only one Slurm clients need
#   export SLURM_UP_DIR=DIR  SLURM_UP_NODE=<hostname -s>
#   export MUNGE_SOCKET=DIR/munge/munge.socket.2   (for `munge -S`; Slurm reads AuthInfo=socket= from slurm.conf)
#   export SLURMRESTD_SOCKET=DIR/run/slurmrestd.sock   (SLURM_UP_RESTD=1; curl --unix-socket, no token)
#   export SLURMRESTD_URL=http://127.0.0.1:PORT        (SLURM_UP_JWT=1 too; headers X-SLURM-USER-NAME +
#                                                       X-SLURM-USER-TOKEN from `scontrol token username=U`)
# stderr: progress / diagnostics.  Knobs only take effect on a fresh start (daemons not running).
#
# Knobs (env):
#   SLURM_UP_CPUS=8          CPUs advertised for the node (config_overrides => may exceed hw)
#   SLURM_UP_GPUS=4          fake GPUs (char devs 195,N made with mknod in DIR/dev); 0 = no GRES
#   SLURM_UP_GPU_TYPE=       optional GRES type (e.g. h100 -> Gres=gpu:h100:4); empty = untyped gpu:4
#   SLURM_UP_MEM=            RealMemory in MB (default: 90% of `slurmd -C`)
#   SLURM_UP_CTLD_PORT=6817  SLURM_UP_SLURMD_PORT=6818
#   SLURM_UP_PARTITIONS="debug gpu"   first one is Default=YES; all contain the node
#   SLURM_UP_TIMEOUT=60      seconds to wait for the node to become idle
#   SLURM_UP_RESTD=0         1 = also start slurmrestd on unix:DIR/run/slurmrestd.sock (rest_auth/local)
#   SLURM_UP_JWT=0           1 = enable auth/jwt as alternate auth (AuthAltTypes) with key DIR/etc/jwt_hs256.key;
#                            with SLURM_UP_RESTD=1 a 2nd slurmrestd listens on 127.0.0.1:SLURM_UP_RESTD_PORT (rest_auth/jwt)
#   SLURM_UP_RESTD_PORT=6820
#   SLURM_UP_KEEP_STATE=0    1 = keep StateSaveLocation across restarts (default: wiped on fresh start)
set -euo pipefail

DIR=${1:?usage: up.sh DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd -P)

CPUS=${SLURM_UP_CPUS:-8}
GPUS=${SLURM_UP_GPUS:-4}
GPU_TYPE=${SLURM_UP_GPU_TYPE:-}
CTLD_PORT=${SLURM_UP_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_UP_SLURMD_PORT:-6818}
PARTS=${SLURM_UP_PARTITIONS:-debug gpu}
TIMEOUT=${SLURM_UP_TIMEOUT:-60}
RESTD=${SLURM_UP_RESTD:-0}
JWT=${SLURM_UP_JWT:-0}
RESTD_PORT=${SLURM_UP_RESTD_PORT:-6820}
NODE=$(hostname -s)

log() { echo "slurm up: $*" >&2; }
die() {
  log "ERROR: $*"
  for f in "$DIR"/log/*.out "$DIR"/log/*.log; do [ -f "$f" ] && { echo "== $f (tail)" >&2; tail -n 20 "$f" >&2; }; done
  [ -d "$DIR/run" ] && "$(dirname "$0")/down.sh" "$DIR" >&2   # stop whatever this run started (by recorded pid)
  exit 1
}

for b in munged mungekey slurmctld slurmd sinfo scontrol; do command -v "$b" >/dev/null || die "$b not found"; done
[ "$(id -u)" = 0 ] || die "must run as root (SlurmUser=root, mknod)"

CONF=$DIR/etc/slurm.conf
MSOCK=$DIR/munge/munge.socket.2

# pid_alive NAME PATTERN : true if DIR/run/NAME.pid holds a live pid whose cmdline contains PATTERN
pid_alive() {
  local f=$DIR/run/$1.pid pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$2"
}

print_env() {
  echo "export SLURM_CONF=$CONF"
  echo "export SLURM_UP_DIR=$DIR"
  echo "export SLURM_UP_NODE=$NODE"
  echo "export MUNGE_SOCKET=$MSOCK"
  if [ "$RESTD" = 1 ] || pid_alive slurmrestd "$CONF"; then
    echo "export SLURMRESTD_SOCKET=$DIR/run/slurmrestd.sock"
    if grep -q '^AuthAltTypes=auth/jwt' "$CONF"; then
      echo "export SLURMRESTD_URL=http://127.0.0.1:$RESTD_PORT"
    fi
  fi
}

node_state() { SLURM_CONF=$CONF sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n1; }

# ---------- already up? ----------
if pid_alive munged "$MSOCK" && pid_alive slurmctld "$CONF" && pid_alive slurmd "$CONF" \
   && SLURM_CONF=$CONF scontrol ping >/dev/null 2>&1; then
  log "already running in $DIR (node $NODE: $(node_state))"
  if [ "$RESTD" = 1 ] && { ! pid_alive slurmrestd "$CONF" || { grep -q '^AuthAltTypes=auth/jwt' "$CONF" && ! pid_alive slurmrestd-jwt "$CONF"; }; }; then :; else print_env; exit 0; fi
  ALREADY=1
else
  ALREADY=0
fi

T0=$(date +%s.%N)
since() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2fs", b-a}'; }

if [ "$ALREADY" = 0 ]; then
  # anything half-alive from an earlier run in this DIR is stopped (by recorded pid only)
  if ls "$DIR"/run/*.pid >/dev/null 2>&1; then
    log "stale/partial instance found, stopping it first"
    "$(dirname "$0")/down.sh" "$DIR" >&2 || true
  fi

  PORTS="$CTLD_PORT $SLURMD_PORT"; [ "$RESTD" = 1 ] && [ "$JWT" = 1 ] && PORTS="$PORTS $RESTD_PORT"
  for p in $PORTS; do
    if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then die "TCP port $p already in use (set SLURM_UP_CTLD_PORT/SLURM_UP_SLURMD_PORT)"; fi
  done

  mkdir -p "$DIR"/{etc,munge,run,log,state,spool,dev}
  chmod 755 "$DIR" "$DIR/munge"          # munged: socket dir must be o+x ("execute permissions for all required")
  [ "${SLURM_UP_KEEP_STATE:-0}" = 1 ] || rm -rf "$DIR/state"/* "$DIR/spool"/*
  rm -f "$DIR"/log/* "$DIR"/run/*

  # ---------- munge ----------
  [ -s "$DIR/munge/munge.key" ] || mungekey -c -b 1024 -k "$DIR/munge/munge.key" 2>/dev/null
  chmod 600 "$DIR/munge/munge.key"
  rm -f "$MSOCK" "$MSOCK.lock"
  # -F: foreground (logs go to stderr -> log/munged.out; --log-file is not used then).
  # --force: munged refuses to start ("... is insecure: group-writable permissions without
  # sticky bit set on <ancestor dir>") if any ancestor of DIR is g+w/o+w without +t; with
  # --force those become warnings. Not needed under /tmp (sticky) or a 0755 path.
  munged -F --force --key-file="$DIR/munge/munge.key" --socket="$MSOCK" \
         --pid-file="$DIR/munge/munged.pid" --seed-file="$DIR/munge/munged.seed" \
         </dev/null >"$DIR/log/munged.out" 2>&1 &
  echo $! > "$DIR/run/munged.pid"
  for _ in $(seq 100); do [ -S "$MSOCK" ] && munge -n -S "$MSOCK" 2>/dev/null | unmunge -S "$MSOCK" >/dev/null 2>&1 && break; sleep 0.05; done
  munge -n -S "$MSOCK" | unmunge -S "$MSOCK" >/dev/null 2>&1 || die "munged did not come up"
  log "munged up ($(since))"

  # ---------- fake GPUs ----------
  rm -f "$DIR"/dev/nvidia*
  if [ "$GPUS" -gt 0 ]; then
    for i in $(seq 0 $((GPUS-1))); do
      mknod "$DIR/dev/nvidia$i" c 195 "$i" 2>/dev/null || touch "$DIR/dev/nvidia$i"   # regular file also works (slurmd logs an error per file)
    done
  fi

  # ---------- config ----------
  if [ -n "${SLURM_UP_MEM:-}" ]; then MEM=$SLURM_UP_MEM; else
    MEM=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n1)
    MEM=$(( ${MEM:-2000} * 9 / 10 ))
  fi
  GRES_NODE=""; GRESTYPES=""
  if [ "$GPUS" -gt 0 ]; then
    GRES_NODE="Gres=gpu:${GPU_TYPE:+$GPU_TYPE:}$GPUS"
    GRESTYPES="GresTypes=gpu"   # AccountingStorageTRES=gres/gpu would need slurmdbd (slurmctld: fatal)
  fi

  cat > "$CONF" <<EOF
# generated by up.sh -- private single-node test cluster
ClusterName=nodetel
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MSOCK
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/slurmd
SlurmctldPidFile=$DIR/run/slurmctld.daemon.pid
SlurmdPidFile=$DIR/run/slurmd.daemon.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$DIR/etc/plugstack.conf
MailProg=/bin/true
# no cgroups: process tracking via /proc, no task binding/confinement
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# advertise CPUS even if the machine has fewer cores
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
# start batch jobs ~1 s after sbatch instead of ~3 s (default batch_sched_delay=3)
SchedulerParameters=batch_sched_delay=0
$GRESTYPES
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$MEM $GRES_NODE State=UNKNOWN
EOF
  if [ "$JWT" = 1 ]; then
    [ -s "$DIR/etc/jwt_hs256.key" ] || head -c 32 /dev/urandom > "$DIR/etc/jwt_hs256.key"
    chmod 600 "$DIR/etc/jwt_hs256.key"
    printf 'AuthAltTypes=auth/jwt\nAuthAltParameters=jwt_key=%s\n' "$DIR/etc/jwt_hs256.key" >> "$CONF"
  fi
  first=1
  for p in $PARTS; do
    if [ $first = 1 ]; then d=YES; first=0; else d=NO; fi
    echo "PartitionName=$p Nodes=ALL Default=$d MaxTime=INFINITE State=UP" >> "$CONF"
  done
  if [ "$GPUS" -gt 0 ]; then
    printf 'AutoDetect=off\nName=gpu%s File=%s/dev/nvidia[0-%d]\n' "${GPU_TYPE:+ Type=$GPU_TYPE}" "$DIR" $((GPUS-1)) > "$DIR/etc/gres.conf"
  else
    : > "$DIR/etc/gres.conf"
  fi
  : > "$DIR/etc/plugstack.conf"   # keep the system /etc/slurm/plugstack.conf out of the picture

  # ---------- slurmctld ----------
  slurmctld -D -i -f "$CONF" </dev/null >"$DIR/log/slurmctld.out" 2>&1 &
  echo $! > "$DIR/run/slurmctld.pid"
  for _ in $(seq $((TIMEOUT*10))); do
    SLURM_CONF=$CONF scontrol ping 2>/dev/null | grep -q 'is UP' && break
    kill -0 "$(cat "$DIR/run/slurmctld.pid")" 2>/dev/null || die "slurmctld exited"
    sleep 0.1
  done
  SLURM_CONF=$CONF scontrol ping 2>/dev/null | grep -q 'is UP' || die "slurmctld not answering"
  log "slurmctld up ($(since))"

  # ---------- slurmd ----------
  mkdir -p "$DIR/spool/slurmd"
  slurmd -D -f "$CONF" </dev/null >"$DIR/log/slurmd.out" 2>&1 &
  echo $! > "$DIR/run/slurmd.pid"
  st=""
  for _ in $(seq $((TIMEOUT*10))); do
    st=$(node_state)
    case "$st" in idle) break;; esac
    kill -0 "$(cat "$DIR/run/slurmd.pid")" 2>/dev/null || die "slurmd exited"
    sleep 0.1
  done
  [ "$st" = idle ] || die "node $NODE not idle after ${TIMEOUT}s (state '$st'): $(SLURM_CONF=$CONF scontrol show node "$NODE" | grep -i reason)"
  log "node $NODE idle ($(since))"
fi

# ---------- optional slurmrestd ----------
# Two instances, because one process cannot serve both modes in 22.05:
#  * slurmrestd       : unix:DIR/run/slurmrestd.sock, rest_auth/local (uid from SO_PEERCRED)
#  * slurmrestd-jwt   : 127.0.0.1:RESTD_PORT, rest_auth/jwt, started with SLURM_JWT=daemon
#                       (with SLURM_JWT=daemon, rest_auth/local answers HTTP 500 "slurm_load_jobs").
# SLURMRESTD_SECURITY=disable_user_check: else "fatal: slurmrestd should not be run as the root user".
# -s openapi/v0.0.38: the default also loads openapi/dbv0.0.38 -> fatal without slurmdbd.
start_restd() {  # NAME AUTH LISTEN [ENV...]
  local name=$1 auth=$2 listen=$3; shift 3
  env "$@" SLURM_CONF="$CONF" SLURMRESTD_SECURITY=disable_user_check \
    slurmrestd -f "$CONF" -a "$auth" -s openapi/v0.0.38 "$listen" \
    </dev/null >"$DIR/log/$name.out" 2>&1 &
  echo $! > "$DIR/run/$name.pid"
}
if [ "$RESTD" = 1 ]; then
  command -v slurmrestd >/dev/null || die "slurmrestd not installed"
  if ! pid_alive slurmrestd "$CONF"; then
    rm -f "$DIR/run/slurmrestd.sock"
    start_restd slurmrestd rest_auth/local "unix:$DIR/run/slurmrestd.sock"
    for _ in $(seq 50); do [ -S "$DIR/run/slurmrestd.sock" ] && break; sleep 0.1; done
    [ -S "$DIR/run/slurmrestd.sock" ] || die "slurmrestd socket missing"
    log "slurmrestd (unix socket, rest_auth/local) up ($(since))"
  fi
  if grep -q '^AuthAltTypes=auth/jwt' "$CONF" && ! pid_alive slurmrestd-jwt "$CONF"; then
    start_restd slurmrestd-jwt rest_auth/jwt "127.0.0.1:$RESTD_PORT" SLURM_JWT=daemon
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$RESTD_PORT/openapi/v3" && break; sleep 0.1; done
    curl -s -o /dev/null "http://127.0.0.1:$RESTD_PORT/openapi/v3" || die "slurmrestd-jwt not answering on $RESTD_PORT"
    log "slurmrestd-jwt (127.0.0.1:$RESTD_PORT, rest_auth/jwt) up ($(since))"
  fi
fi

print_env
