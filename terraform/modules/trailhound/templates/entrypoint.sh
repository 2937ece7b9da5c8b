# Entry script of the trailhound container on ECS. The task definition runs it as
#
#   /bin/sh -c "<this script>" trailhound ARGS...
#
# so "$@" is the trailhound command line the state machine chose (`hunt`, `muster`,
# `account --id 111122223333`, `tables`, `learn --days 14`, ...). POSIX sh, for Debian's dash.
#
# 1. The config: TRAILHOUND_CONFIG_TOML (written by the Terraform module) becomes
#    /tmp/trailhound.toml, and trailhound runs with --config on it and JSON logs.
# 2. `muster` with TRAILHOUND_MUSTER_OUT=s3://BUCKET/KEY: `trailhound muster` prints the
#    accounts as one JSON array on stdout and has no option to write it to S3, so this script
#    keeps stdout in a file and PUTs it to that key (with curl's SigV4 signing and the task
#    role's credentials), where the Distributed Map's ItemReader reads it.
set -eu
umask 077

tmp="${TMPDIR:-/tmp}"
conf="$tmp/trailhound.toml"
if [ -z "${TRAILHOUND_CONFIG_TOML:-}" ]; then
  echo "entrypoint: TRAILHOUND_CONFIG_TOML is empty; the task definition must set it" >&2
  exit 2
fi
printf '%s\n' "$TRAILHOUND_CONFIG_TOML" > "$conf"

# A JSON string field of the credentials document (no jq in the image; the values are plain
# base64-ish text without quotes or escapes).
json_field() {
  printf '%s' "$2" | tr -d '\n' | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p"
}

# put_s3 FILE s3://BUCKET/KEY
put_s3() {
  file="$1"
  rest="${2#s3://}"
  bucket="${rest%%/*}"
  key="${rest#*/}"
  if [ -z "$bucket" ] || [ -z "$key" ] || [ "$key" = "$rest" ]; then
    echo "entrypoint: TRAILHOUND_MUSTER_OUT must be s3://BUCKET/KEY, not $2" >&2
    return 2
  fi
  region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
  if [ -z "$region" ]; then
    echo "entrypoint: AWS_REGION is not set" >&2
    return 2
  fi
  # The task role's credentials, from the ECS credentials endpoint (as the AWS SDKs get them).
  creds_url=""
  if [ -n "${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI:-}" ]; then
    creds_url="http://169.254.170.2${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI}"
  elif [ -n "${AWS_CONTAINER_CREDENTIALS_FULL_URI:-}" ]; then
    creds_url="$AWS_CONTAINER_CREDENTIALS_FULL_URI"
  fi
  if [ -n "$creds_url" ]; then
    creds="$(curl -fsS --max-time 10 --retry 3 "$creds_url")"
    access_key="$(json_field AccessKeyId "$creds")"
    secret_key="$(json_field SecretAccessKey "$creds")"
    token="$(json_field Token "$creds")"
  else
    access_key="${AWS_ACCESS_KEY_ID:-}"
    secret_key="${AWS_SECRET_ACCESS_KEY:-}"
    token="${AWS_SESSION_TOKEN:-}"
  fi
  if [ -z "$access_key" ] || [ -z "$secret_key" ]; then
    echo "entrypoint: no AWS credentials for the upload of the account list" >&2
    return 2
  fi
  if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
    url="${AWS_ENDPOINT_URL%/}/$bucket/$key"
  else
    url="https://$bucket.s3.$region.amazonaws.com/$key"
  fi
  hash="$(sha256sum "$file" | cut -d' ' -f1)"
  # Credentials go to curl on stdin (-K -), never on its command line.
  {
    printf 'user = "%s:%s"\n' "$access_key" "$secret_key"
    if [ -n "$token" ]; then
      printf 'header = "x-amz-security-token: %s"\n' "$token"
    fi
  } | curl -fsS --max-time 60 --retry 3 -K - \
    --aws-sigv4 "aws:amz:$region:s3" \
    -X PUT --data-binary "@$file" \
    -H "x-amz-content-sha256: $hash" \
    -H "Content-Type: application/json" \
    -o /dev/null "$url"
  echo "entrypoint: wrote the account list ($(wc -c < "$file") bytes) to s3://$bucket/$key" >&2
}

if [ "${1:-}" = "muster" ] && [ -n "${TRAILHOUND_MUSTER_OUT:-}" ]; then
  out="$tmp/accounts.json"
  trailhound --config "$conf" --log-format json "$@" > "$out"
  put_s3 "$out" "$TRAILHOUND_MUSTER_OUT"
  exit 0
fi

exec trailhound --config "$conf" --log-format json "$@"
