#!/usr/bin/env bash
# Brings up a real OpenStack on 127.0.0.1 for the controller suite's real tier (as root, Debian):
#   RabbitMQ and MariaDB from Debian; Keystone 30 and Cinder 29 from PyPI, pinned by
#   constraints.txt; cinder-api, cinder-scheduler, cinder-volume (backends `fake`: the fake
#   driver, and `nfs`: the NFS driver on a local directory) and cinder-backup (posix driver).
# Writes $STATE_DIR/clouds.yaml (clouds `csi` and `admin`); tests/real-openstack/down.sh stops it.
# Running it again while the cloud is up does nothing; after a failure it starts over.
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"

[ "$(id -u)" = 0 ] || { echo "up.sh: needs root (mounts, Debian packages)" >&2; exit 1; }

healthy() {
  for s in $SERVICES; do alive "$s" || return 1; done
  curl -sf -o /dev/null "http://127.0.0.1:$KEYSTONE_PORT/v3" &&
    curl -s -o /dev/null "http://127.0.0.1:$CINDER_PORT/" && [ -f "$STATE_DIR/clouds.yaml" ]
}
if [ -f "$RUN/up" ] && healthy; then
  say "already up: $STATE_DIR/clouds.yaml"
  exit 0
fi

# Anything left from an earlier, failed or half-stopped run goes first.
"$HERE/down.sh" --quiet
for port in $PORTS; do
  if listening "$port"; then
    echo "up.sh: port $port is taken by a process this script did not start:" >&2
    ss -Hltnp "sport = :$port" >&2
    exit 1
  fi
done

on_failure() {
  local code=$? line=${BASH_LINENO[0]} command=$BASH_COMMAND
  # A failing command substitution reports in its parent, once.
  [ "$BASHPID" = "$$" ] || exit "$code"
  trap - ERR
  echo "up.sh: FAILED (exit $code) at line $line: $command" >&2
  echo "up.sh: the logs:" >&2
  for f in "$LOGS"/*; do
    [ -s "$f" ] || continue
    echo "----- $f (last 40 lines)" >&2
    tail -n 40 "$f" >&2
  done
  "$HERE/down.sh" --quiet || true
  exit "$code"
}
trap on_failure ERR

mkdir -p "$RUN" "$LOGS" "$STATE_DIR"/{etc/rootwrap.d,bin,state/lock,backups,nfs-export,mnt,keystone/fernet-keys,keystone/credential-keys,rabbitmq}
rm -rf "$STATE_DIR/mysql" "$STATE_DIR/backups"/* "$STATE_DIR/nfs-export"/* "$STATE_DIR/state/lock"/*
rm -f "$LOGS"/*

# Passwords of this run: random, kept in a 0600 file, never echoed.
( umask 077
  rnd() { head -c 18 /dev/urandom | base64 | tr -d '/+='; }
  printf 'ADMIN_PASSWORD=%s\nCINDER_PASSWORD=%s\nCSI_PASSWORD=%s\nDB_PASSWORD=%s\n' \
    "$(rnd)" "$(rnd)" "$(rnd)" "$(rnd)" > "$STATE_DIR/secrets" )
# shellcheck disable=SC1091
. "$STATE_DIR/secrets"

# 1. Python packages, in the background while apt works. The venv is reused when it was made
#    from the same constraints file.
export DEBIAN_FRONTEND=noninteractive
apt_install() {
  local missing="" p release
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  [ -z "$missing" ] && return 0
  release=$(. /etc/os-release && echo "$VERSION_CODENAME")
  # No daemon may start itself from the package scripts (they would listen on 0.0.0.0).
  local made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq >"$LOGS/apt.log" 2>&1; APT_UPDATED=1; }
  # shellcheck disable=SC2086
  apt-get install -y -qq -t "$release" --no-install-recommends $missing >>"$LOGS/apt.log" 2>&1
  [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
}
"$PYTHON" -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
sum=$(sha256sum "$HERE/constraints.txt" | cut -c1-16)
if [ "$(cat "$VENV/.made-from" 2>/dev/null)" != "$sum" ]; then
  rm -rf "$VENV"
  ( "$PYTHON" -m venv "$VENV" &&
    "$VENV/bin/pip" install -q --disable-pip-version-check -c "$HERE/constraints.txt" \
      keystone cinder gunicorn pymysql fixtures &&
    echo "$sum" > "$VENV/.made-from" ) >"$LOGS/pip.log" 2>&1 &
  pip_pid=$!
else
  pip_pid=""
fi
apt_install rabbitmq-server mariadb-server qemu-utils curl
say "Debian packages in"

# 2. RabbitMQ and its epmd, on loopback only; it takes a few seconds to boot, so it goes first.
R=$STATE_DIR/rabbitmq
mkdir -p "$R/mnesia" "$R/log"
printf 'listeners.tcp.default = 127.0.0.1:5672\nloopback_users.guest = true\nlog.console = false\n' > "$R/rabbitmq.conf"
echo '[].' > "$R/enabled_plugins"
: > "$R/rabbitmq-env.conf"
cat > "$R/env.sh" <<EOF
export HOME=$R RABBITMQ_NODENAME=rabbit@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=5672 RABBITMQ_DIST_PORT=25672 ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export RABBITMQ_MNESIA_BASE=$R/mnesia RABBITMQ_LOG_BASE=$R/log
export RABBITMQ_CONF_ENV_FILE=$R/rabbitmq-env.conf RABBITMQ_CONFIG_FILE=$R/rabbitmq.conf
export RABBITMQ_ENABLED_PLUGINS_FILE=$R/enabled_plugins
EOF
(
  # shellcheck disable=SC1091
  . "$R/env.sh"
  nohup epmd -address 127.0.0.1 >"$LOGS/epmd.log" 2>&1 </dev/null &
  echo $! > "$RUN/epmd.pid"
  for _ in $(seq 1 40); do listening 4369 && break; sleep 0.25; done
  nohup /usr/lib/rabbitmq/bin/rabbitmq-server >"$LOGS/rabbitmq.log" 2>&1 </dev/null &
  echo $! > "$RUN/rabbitmq.pid"
)

# 3. MariaDB on loopback, one database per service.
mariadb-install-db --no-defaults --user=root --datadir="$STATE_DIR/mysql" --skip-test-db \
  >"$LOGS/mariadb-install.log" 2>&1
nohup mariadbd --no-defaults --user=root --datadir="$STATE_DIR/mysql" --bind-address=127.0.0.1 --port=3306 \
  --socket="$RUN/mysqld.sock" --pid-file="$RUN/mysqld.pidfile" --skip-name-resolve --skip-log-bin \
  --max-connections=500 --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=0 \
  --log-error="$LOGS/mariadb.err" >/dev/null 2>&1 </dev/null &
echo $! > "$RUN/mariadb.pid"
for _ in $(seq 1 120); do
  mariadb-admin --no-defaults -S "$RUN/mysqld.sock" -uroot ping >/dev/null 2>&1 && break
  alive mariadb || { echo "mariadbd exited" >&2; false; }
  sleep 0.25
done
mariadb --no-defaults -S "$RUN/mysqld.sock" -uroot <<EOF
CREATE DATABASE keystone; CREATE DATABASE cinder;
CREATE USER 'openstack'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL ON keystone.* TO 'openstack'@'127.0.0.1'; GRANT ALL ON cinder.* TO 'openstack'@'127.0.0.1';
EOF
say "MariaDB up"

if [ -n "$pip_pid" ]; then
  wait "$pip_pid" || { echo "pip install failed" >&2; false; }
fi
say "Python packages in ($VENV)"

# 4. Keystone (fernet tokens) under gunicorn.
K=$STATE_DIR/keystone
DB="mysql+pymysql://openstack:$DB_PASSWORD@127.0.0.1:3306"
cat > "$K/keystone.conf" <<EOF
[DEFAULT]
log_dir = $LOGS
[database]
connection = $DB/keystone
[token]
provider = fernet
[fernet_tokens]
key_repository = $K/fernet-keys
[credential]
key_repository = $K/credential-keys
EOF
KM=("$VENV/bin/keystone-manage" --config-file "$K/keystone.conf")
"${KM[@]}" db_sync >"$LOGS/keystone-manage.log" 2>&1
"${KM[@]}" fernet_setup --keystone-user root --keystone-group root >>"$LOGS/keystone-manage.log" 2>&1
"${KM[@]}" credential_setup --keystone-user root --keystone-group root >>"$LOGS/keystone-manage.log" 2>&1
"${KM[@]}" bootstrap --bootstrap-password "$ADMIN_PASSWORD" --bootstrap-region-id RegionOne \
  --bootstrap-public-url "http://127.0.0.1:$KEYSTONE_PORT/v3/" \
  --bootstrap-internal-url "http://127.0.0.1:$KEYSTONE_PORT/v3/" >>"$LOGS/keystone-manage.log" 2>&1
# Keystone's oslo.config would parse gunicorn's command line and exit: hand it an empty one.
cat > "$K/keystone_wsgi.py" <<EOF
import os, sys
sys.argv = sys.argv[:1]
os.environ.setdefault("OS_KEYSTONE_CONFIG_FILES", "$K/keystone.conf")
from keystone.wsgi.api import application  # noqa: E402,F401
EOF
(cd "$K" && exec nohup "$VENV/bin/gunicorn" --no-control-socket --bind "127.0.0.1:$KEYSTONE_PORT" \
  --workers 2 --threads 4 keystone_wsgi:application >"$LOGS/keystone.out" 2>&1 </dev/null) &
echo $! > "$RUN/keystone.pid"
for _ in $(seq 1 120); do
  curl -sf -o /dev/null "http://127.0.0.1:$KEYSTONE_PORT/v3" && break
  alive keystone || { echo "keystone exited" >&2; false; }
  sleep 0.25
done
"$VENV/bin/python" "$HERE/bootstrap.py" keystone "$STATE_DIR"
say "Keystone up, users and endpoints made"

# 5. Cinder configuration; the NFS "share" is a local directory bind-mounted where the NFS
#    driver expects its mount, so no NFS server is needed.
SHARE="127.0.0.1:$STATE_DIR/nfs-export"
MNT=$STATE_DIR/mnt/$("$PYTHON" -c 'import hashlib,sys; print(hashlib.md5(sys.argv[1].encode()).hexdigest())' "$SHARE")
mkdir -p "$MNT"
grep -q " $MNT " /proc/mounts || mount --bind "$STATE_DIR/nfs-export" "$MNT"
echo "$MNT" > "$RUN/bindmount"
echo "$SHARE" > "$STATE_DIR/etc/nfs_shares"
cat > "$STATE_DIR/etc/cinder.conf" <<EOF
[DEFAULT]
auth_strategy = keystone
transport_url = rabbit://guest:guest@127.0.0.1:5672/
my_ip = 127.0.0.1
host = realcinder
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = $CINDER_PORT
osapi_volume_workers = 2
state_path = $STATE_DIR/state
log_dir = $LOGS
rootwrap_config = $STATE_DIR/etc/rootwrap.conf
api_paste_config = $VENV/etc/cinder/api-paste.ini
# Which list filters users may use; without it every filter is refused.
resource_query_filters_file = $VENV/etc/cinder/resource_filters.json
enabled_backends = fake,nfs
default_volume_type = fake
default_group_type = csi-generic
backup_driver = cinder.backup.drivers.posix.PosixBackupDriver
backup_posix_path = $STATE_DIR/backups
[database]
connection = $DB/cinder
[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:$KEYSTONE_PORT/v3
auth_url = http://127.0.0.1:$KEYSTONE_PORT/v3
auth_type = password
username = cinder
password = $CINDER_PASSWORD
user_domain_id = default
project_name = service
project_domain_id = default
[oslo_concurrency]
lock_path = $STATE_DIR/state/lock
[oslo_messaging_notifications]
driver = noop
[coordination]
backend_url = file://$STATE_DIR/state/coordination
[fake]
volume_driver = cinder.tests.fake_driver.FakeLoggingVolumeDriver
volume_backend_name = fake
[nfs]
volume_driver = cinder.volume.drivers.nfs.NfsDriver
volume_backend_name = nfs
nfs_shares_config = $STATE_DIR/etc/nfs_shares
nfs_mount_point_base = $STATE_DIR/mnt
nfs_snapshot_support = true
nfs_sparsed_volumes = true
nas_secure_file_operations = false
nas_secure_file_permissions = false
EOF
chmod 600 "$STATE_DIR/etc/cinder.conf"
cat > "$STATE_DIR/etc/rootwrap.conf" <<EOF
[DEFAULT]
filters_path=$VENV/etc/cinder/rootwrap.d,$VENV/etc/os-brick/rootwrap.d,$STATE_DIR/etc/rootwrap.d
exec_dirs=$VENV/bin,$STATE_DIR/bin,/sbin,/usr/sbin,/bin,/usr/bin
use_syslog=False
EOF
printf '[Filters]\nmount.nfs: CommandFilter, mount.nfs, root\n' > "$STATE_DIR/etc/rootwrap.d/local.filters"
# We are root already; and the share is mounted (bound) in advance, the driver only looks for
# mount.nfs.
printf '#!/bin/sh\n[ "$1" = "-n" ] && shift\nexec "$@"\n' > "$STATE_DIR/bin/sudo"
printf '#!/bin/sh\nexit 0\n' > "$STATE_DIR/bin/mount.nfs"
chmod +x "$STATE_DIR/bin/sudo" "$STATE_DIR/bin/mount.nfs"
"$VENV/bin/cinder-manage" --config-file "$STATE_DIR/etc/cinder.conf" db sync >"$LOGS/cinder-manage.log" 2>&1
say "Cinder database made"

(
  # shellcheck disable=SC1091
  . "$R/env.sh"
  for _ in $(seq 1 120); do
    /usr/lib/rabbitmq/bin/rabbitmqctl -q -t 5 await_startup >/dev/null 2>&1 && exit 0
    kill -0 "$(cat "$RUN/rabbitmq.pid")" 2>/dev/null || exit 1
    sleep 0.5
  done
  exit 1
) || { echo "RabbitMQ did not start" >&2; false; }
say "RabbitMQ up"

# 6. The Cinder services.
export PATH=$STATE_DIR/bin:$VENV/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONWARNINGS=ignore
for svc in api scheduler volume backup; do
  nohup "$VENV/bin/cinder-$svc" --config-file "$STATE_DIR/etc/cinder.conf" >"$LOGS/cinder-$svc.out" 2>&1 </dev/null &
  echo $! > "$RUN/cinder-$svc.pid"
done
for _ in $(seq 1 240); do
  curl -s -o /dev/null "http://127.0.0.1:$CINDER_PORT/" && break
  alive cinder-api || { echo "cinder-api exited" >&2; false; }
  sleep 0.25
done
"$VENV/bin/python" "$HERE/bootstrap.py" cinder "$STATE_DIR"
for s in $SERVICES; do alive "$s" || { echo "$s exited" >&2; false; }; done
touch "$RUN/up"
trap - ERR
say "up: Keystone http://127.0.0.1:$KEYSTONE_PORT/v3, Cinder http://127.0.0.1:$CINDER_PORT/v3"
say "driver configuration: $STATE_DIR/clouds.yaml (cloud csi; admin for the tests)"
