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
# Stopped in this order: API users first, the broker and the database last.
SERVICES="cinder-api cinder-scheduler cinder-volume cinder-backup keystone mariadb rabbitmq epmd"

T0=${T0:-$(date +%s)}
say() { printf '[%4ss] %s\n' "$(($(date +%s) - T0))" "$*"; }

# Stops the process recorded in $RUN/$1.pid (TERM, then KILL after 20 s) and forgets it.
stop_pid() {
  local file=$RUN/$1.pid pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then
      say "$1 (pid $pid) ignored TERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$file"
}

# True when the process recorded for $1 is alive.
alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

# True when something listens on 127.0.0.1:$1 (or any address).
listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
