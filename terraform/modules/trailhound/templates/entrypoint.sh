# shellcheck shell=sh
# Entry script of the trailhound container on ECS. The task definition runs it as
#
#   /bin/sh -c "<this script>" trailhound ARGS...
#
# so "$@" is the trailhound command line the state machine chose (`hunt`,
# `muster --out s3://...`, `account --id 111122223333`, `tables`, `learn --days 14`, ...).
# POSIX sh, for Debian's dash.
#
# trailhound reads its config from a file, and the task definition can only pass text in the
# environment: TRAILHOUND_CONFIG_TOML (written by the Terraform module) becomes
# /tmp/trailhound.toml (the only writable place), and trailhound runs with --config on it and
# JSON logs for CloudWatch.
set -eu
umask 077

conf="${TMPDIR:-/tmp}/trailhound.toml"
if [ -z "${TRAILHOUND_CONFIG_TOML:-}" ]; then
  echo "entrypoint: TRAILHOUND_CONFIG_TOML is empty; the task definition must set it" >&2
  exit 2
fi
printf '%s\n' "$TRAILHOUND_CONFIG_TOML" > "$conf"

exec trailhound --config "$conf" --log-format json "$@"
