#!/usr/bin/env bash
# down.sh DIR -- stop the private Slurm started by up.sh DIR.
# Only processes whose pids were recorded in DIR/run/*.pid are signalled (SIGTERM, then
# SIGKILL after a grace period), and only if their cmdline still refers to DIR.
# Running jobs of this private cluster are cancelled first (scancel) so that no
# slurmstepd / task processes are left behind.
set -uo pipefail

DIR=${1:?usage: down.sh DIR}
[ -d "$DIR" ] || { echo "slurm down: $DIR does not exist" >&2; exit 0; }
DIR=$(cd "$DIR" && pwd -P)
CONF=$DIR/etc/slurm.conf
log() { echo "slurm down: $*" >&2; }

# pid of DIR/run/NAME.pid if alive and its cmdline mentions DIR
recorded_pid() {
  local f=$DIR/run/$1.pid pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$DIR" || return 1
  echo "$pid"
}

# 1. cancel jobs of this cluster while slurmctld + slurmd are still up
if recorded_pid slurmctld >/dev/null && [ -f "$CONF" ]; then
  jobs=$(SLURM_CONF=$CONF timeout 10 squeue -h -o %A 2>/dev/null | tr '\n' ' ')
  if [ -n "${jobs// /}" ]; then
    log "cancelling jobs: $jobs"
    # shellcheck disable=SC2086
    SLURM_CONF=$CONF timeout 10 scancel $jobs 2>/dev/null || true
    for _ in $(seq 150); do   # up to 15 s (KillWait=5 in the generated config)
      left=$(SLURM_CONF=$CONF timeout 5 squeue -h -t R,CG,S -o %A 2>/dev/null)
      [ -z "$left" ] && break
      sleep 0.1
    done
    # make sure the slurmstepds (and their tasks) are gone before slurmd is stopped
    for _ in $(seq 100); do
      ls "$DIR"/spool/slurmd/*_[0-9]* >/dev/null 2>&1 || break
      sleep 0.1
    done
  fi
fi

# 2. stop daemons: SIGTERM to all recorded daemons at once (each needs ~2 s to exit on
#    its own, so doing them one after another costs ~6-8 s), SIGKILL after 10 s.
declare -A PIDS=()
for name in slurmrestd-jwt slurmrestd slurmd slurmctld munged; do
  if pid=$(recorded_pid "$name"); then PIDS[$name]=$pid; kill -TERM "$pid" 2>/dev/null; fi
  rm -f "$DIR/run/$name.pid"
done
for _ in $(seq 100); do
  alive=0; for n in "${!PIDS[@]}"; do kill -0 "${PIDS[$n]}" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break; sleep 0.1
done
for n in "${!PIDS[@]}"; do
  if kill -0 "${PIDS[$n]}" 2>/dev/null; then log "$n (${PIDS[$n]}) ignored SIGTERM, sending SIGKILL"; kill -KILL "${PIDS[$n]}" 2>/dev/null; fi
  log "stopped $n (${PIDS[$n]})"
done
rm -f "$DIR/munge/munge.socket.2" "$DIR/munge/munge.socket.2.lock" "$DIR/run/slurmrestd.sock"
# steps that were still running when slurmctld was already gone keep their slurmstepd
# (cmdline "slurmstepd: [JOB.STEP]") and a socket NODE_JOB.STEP in the spool dir; report, don't kill
left=$(ls "$DIR"/spool/slurmd/ 2>/dev/null | grep -E '_[0-9]+\.[0-9]+$' | tr '\n' ' ')
[ -n "$left" ] && log "WARNING: step sockets left in spool/slurmd (orphaned slurmstepd?): $left"
exit 0
