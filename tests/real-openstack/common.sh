# Shared by up.sh and down.sh: where the real-OpenStack tier keeps its state, and small helpers.
# Everything lives under STATE_DIR; every process started records its pid in $RUN/<name>.pid.

STATE_DIR=${STATE_DIR:-/var/tmp/cinder-evs-csi-openstack}
RUN=$STATE_DIR/run
LOGS=$STATE_DIR/log
VENV=$STATE_DIR/venv
# Debian's interpreter, not whatever python3 comes first on PATH (pyenv, conda).
PYTHON=${PYTHON:-/usr/bin/python3}
KEYSTONE_PORT=5000
CINDER_PORT=8776
# Listening ports the tier owns, all on 127.0.0.1; up.sh refuses to start over anything else.
PORTS="3306 4369 5672 25672 $KEYSTONE_PORT $CINDER_PORT"
# Every process up.sh starts; down.sh stops the OpenStack services first, then the database,
# the broker and its epmd.
OPENSTACK="cinder-api cinder-scheduler cinder-volume cinder-backup keystone"
SERVICES="$OPENSTACK mariadb rabbitmq epmd"

T0=${T0:-$(date +%s)}
say() { printf '[%4ss] %s\n' "$(($(date +%s) - T0))" "$*"; }

# Stops the processes recorded in $RUN/<name>.pid for each name given, all at once: TERM, then
# KILL for any still alive after 20 s. Forgets them.
stop_pids() {
  local name pid pids=""
  for name in "$@"; do
    [ -f "$RUN/$name.pid" ] || continue
    pid=$(cat "$RUN/$name.pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      pids="$pids $pid"
    fi
    rm -f "$RUN/$name.pid"
  done
  for _ in $(seq 1 80); do
    local left=""
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && left="$left $pid"; done
    pids=$left
    [ -z "$pids" ] && return 0
    sleep 0.25
  done
  for pid in $pids; do
    say "pid $pid ignored TERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# True when the process recorded for $1 is alive.
alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

# True when something listens on 127.0.0.1:$1 (or any address).
listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
