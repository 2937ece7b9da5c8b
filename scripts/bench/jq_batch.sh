#!/usr/bin/env bash
# One batch of the `zcat | jq` contender of scripts/bench.sh: decompresses the files given as
# arguments and prints their distinct activity keys (see distinct.jq).
#
# Files named as CloudTrail names its objects belong to the account in the name, as in
# trailhound's scan; jq cannot see file names in a concatenated stream, so consecutive files
# of one account go to one `zcat | jq` with that account. (Lists sorted by path keep an
# account's files together, so a batch makes one or two jq processes.)
set -euo pipefail
program="$(dirname "$0")/distinct.jq"
named='^([0-9]{12})_CloudTrail_[a-z][a-z0-9-]{0,31}_[0-9]{8}T[0-9]{4}Z(_|$)'

run() {
  local account=$1
  shift
  [ "$#" -gt 0 ] || return 0
  zcat -f -- "$@" | jq -n -r --arg acct "$account" -f "$program"
}

current=""
group=()
for file in "$@"; do
  account=""
  if [[ "${file##*/}" =~ $named ]]; then
    account="${BASH_REMATCH[1]}"
  fi
  if [ "${#group[@]}" -gt 0 ] && [ "$account" != "$current" ]; then
    run "$current" "${group[@]}"
    group=()
  fi
  current=$account
  group+=("$file")
done
if [ "${#group[@]}" -gt 0 ]; then
  run "$current" "${group[@]}"
fi
