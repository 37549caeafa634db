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
for s in $SERVICES; do
  if [ "$s" = rabbitmq ] && alive rabbitmq; then
    # A clean broker stop; the pid below is the fallback.
    ( . "$STATE_DIR/rabbitmq/env.sh" && timeout 30 /usr/lib/rabbitmq/bin/rabbitmqctl -q shutdown ) >/dev/null 2>&1
  fi
  was_alive=""; alive "$s" && was_alive=1
  stop_pid "$s"
  [ -z "$was_alive" ] || [ -n "$quiet" ] || say "stopped $s"
done
# Children that outlived their parent (service workers) still name the state directory.
for dir in /proc/[0-9]*; do
  pid=${dir#/proc/}
  [ "$pid" = $$ ] && continue
  if tr '\0' ' ' < "$dir/cmdline" 2>/dev/null | grep -q -- "$STATE_DIR/"; then
    echo "down.sh: killing leftover pid $pid: $(tr '\0' ' ' < "$dir/cmdline" | cut -c1-120)" >&2
    kill -KILL "$pid" 2>/dev/null
  fi
done
if [ -f "$RUN/bindmount" ]; then
  mnt=$(cat "$RUN/bindmount")
  ! grep -q " $mnt " /proc/mounts || umount "$mnt" || umount -l "$mnt"
  rm -f "$RUN/bindmount"
fi
[ -z "$purge" ] || rm -rf "$STATE_DIR"
[ -n "$quiet" ] || say "down"
