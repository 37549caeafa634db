#!/usr/bin/env bash
# Stops everything tests/real-openstack/up.sh started, each by its recorded pid, and removes the
# NFS bind mount. Safe to run any number of times. Keeps $STATE_DIR (logs, the venv) for a look
# or a faster next start; `down.sh --purge` removes it too.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"
quiet=""; purge=""
for arg in "$@"; do
  case $arg in --quiet) quiet=1 ;; --purge) purge=1 ;; *) echo "usage: down.sh [--quiet] [--purge]" >&2; exit 2 ;; esac
done
[ -d "$RUN" ] || { [ -n "$purge" ] && rm -rf "$STATE_DIR"; exit 0; }

rm -f "$RUN/up"
running=""
for s in $SERVICES; do alive "$s" && running="$running $s"; done
# shellcheck disable=SC2086
stop_pids $OPENSTACK
stop_pids mariadb
if alive rabbitmq; then
  # A clean broker stop; the pid is the fallback.
  ( . "$STATE_DIR/rabbitmq/env.sh" && timeout 30 /usr/lib/rabbitmq/bin/rabbitmqctl -q shutdown ) >/dev/null 2>&1
fi
stop_pids rabbitmq
stop_pids epmd
[ -z "$running" ] || [ -n "$quiet" ] || say "stopped$running"
# Children that outlived their parent (service workers) still name the state directory.
for file in $(grep -lsF -- "$STATE_DIR/" /proc/[0-9]*/cmdline); do
  pid=${file#/proc/}; pid=${pid%/cmdline}
  # The grep itself matched, and is gone.
  kill -0 "$pid" 2>/dev/null || continue
  echo "down.sh: killing leftover pid $pid: $( { tr '\0' ' ' < "$file"; } 2>/dev/null | cut -c1-120)" >&2
  kill -KILL "$pid" 2>/dev/null
done
if [ -f "$RUN/bindmount" ]; then
  mnt=$(cat "$RUN/bindmount")
  ! grep -q " $mnt " /proc/mounts || umount "$mnt" || umount -l "$mnt"
  rm -f "$RUN/bindmount"
fi
[ -z "$purge" ] || rm -rf "$STATE_DIR"
[ -n "$quiet" ] || say "down"
