# The distinct (account, principal, eventSource, eventName, outcome) keys of CloudTrail records,
# computed the way trailhound's scan computes them (src/cloudtrail/principal.rs Principal::of,
# src/cloudtrail/outcome.rs, src/source/fold.rs record_account). Used by scripts/bench.sh as
# the `zcat | jq` contender:
#
#   zcat -f FILES | jq -n -r --arg acct ACCOUNT -f distinct.jq
#
# The input is any stream of JSON documents: {"Records":[...]}, bare arrays of records, or one
# record per line. ACCOUNT is the account in the files' CloudTrail object names, or "" for files
# without such a name (then a record's account is recipientAccountId, else
# userIdentity.accountId, and a record with neither is no account's). Prints each distinct key
# once, as a compact JSON array.

# A string field as trailhound reads it: other JSON types and "" are absent.
def text: if type == "string" and . != "" then . else null end;
# An object field: anything else is absent.
def object: if type == "object" then . else null end;
def digits: explode | all(. >= 48 and . <= 57);
def account_id: if type == "string" and length == 12 and digits then . else null end;

# The records of one document.
def records:
  if type == "array" then .[]
  elif type == "object" then
    if .Records == null then .
    elif (.Records | type) == "array" then .Records[]
    else empty
    end
  else empty
  end;

# eventSource and eventName must be strings, eventTime a timestamp trailhound parses:
# YYYY-MM-DD, or YYYY-MM-DD[T ]HH:MM:SS[.fraction](Z|+HH:MM). CloudTrail's own form
# (2023-07-10T11:42:36Z) goes through strptime, the others through `timestamp`. (jq 1.6
# compiles a regex on every test(), so no regex here: jq should not look slower than it is.)
def timestamp:
  length as $n
  | ($n == 10 or $n >= 20)
    and (.[0:4] | digits) and .[4:5] == "-" and (.[5:7] | digits) and .[7:8] == "-"
    and (.[8:10] | digits)
    and ($n == 10
      or ((.[10:11] | . == "T" or . == "t" or . == " ")
        and (.[11:13] | digits) and .[13:14] == ":" and (.[14:16] | digits)
        and .[16:17] == ":" and (.[17:19] | digits)
        and (.[19:] | ltrimstr(".") as $r
          | ($r | length) as $m
          # the fraction's digits, then the zone
          | ([$r | explode | (to_entries[] | select(.value < 48 or .value > 57) | .key)] | .[0] // $m) as $i
          | (.[0:1] != "." or $i > 0)
            and ($r[$i:] | . == "Z" or . == "z"
              or (length == 6 and (.[0:1] == "+" or .[0:1] == "-") and (.[1:3] | digits)
                  and .[3:4] == ":" and (.[4:6] | digits))))));

def usable:
  type == "object"
  and (.eventSource | type) == "string"
  and (.eventName | type) == "string"
  and (.eventTime | type == "string"
    and ((length == 20 and (try (strptime("%Y-%m-%dT%H:%M:%SZ") | true) catch false))
      or timestamp));

# arn:aws:sts::1:assumed-role/Name/session -> arn:aws:iam::1:role/Name, or null.
def role_from_session:
  split(":assumed-role/") as $p
  | if ($p | length) < 2 then null
    else
      ($p[1:] | join(":assumed-role/") | split("/") | .[0] // "") as $role
      | ($p[0] | split("::")) as $h
      | if $role == "" or ($h | length) < 2 then null
        else
          ($h[:-1] | join("::")) as $head
          | if ($head | startswith("arn:")) | not then null
            else "arn:\($head[4:] | split(":") | .[0] // ""):iam::\($h[-1]):role/\($role)"
            end
        end
    end;

def known_types:
  {"Root": 1, "IAMUser": 1, "AssumedRole": 1, "FederatedUser": 1, "AWSService": 1,
   "AWSAccount": 1, "IdentityCenterUser": 1, "WebIdentityUser": 1, "SAMLUser": 1};

# The principal key of a record, or null when it names no one. $fallback: the record's account.
def principal($fallback):
  (.userIdentity | object) as $id
  | if $id == null then null
    else
      (($id.accountId | text) // (.recipientAccountId | text) // $fallback) as $account
      | ($id.sessionContext | object | .sessionIssuer | object | .arn | text) as $issuer
      | ($id.arn | text) as $arn
      | ($id.principalId | text) as $pid
      | ($id.userName | text) as $user
      | ($id.invokedBy | text) as $invoked
      | ($id.type | text) as $t
      | (if $t != null then (if known_types[$t] then $t else "Unknown" end)
         elif $invoked != null and $arn == null then "AWSService"
         else "Unknown"
         end) as $kind
      | if $kind == "Root" then $arn // "arn:aws:iam::\($account):root"
        elif $kind == "IAMUser" then
          $arn
          // (if $user then "arn:aws:iam::\($account):user/\($user)" else null end)
          // (if $pid then "iam-user:\($account):\($pid)" else null end)
        elif $kind == "AssumedRole" then
          $issuer
          // (if $arn then $arn | role_from_session else null end)
          // (if $pid then "role-id:\($account):\($pid | split(":") | .[0])" else null end)
        elif $kind == "FederatedUser" then
          $issuer // $arn // (if $pid then "federated:\($account):\($pid)" else null end)
        elif $kind == "AWSService" then
          ($invoked // $pid) | if . then "service:\(.)" else null end
        elif $kind == "AWSAccount" then
          ((if $pid then $pid | split(":") | .[0] else null end) // ($id.accountId | text))
          | if . != null then "aws-account:\(.)" else null end
        elif $kind == "IdentityCenterUser" then
          ($id.onBehalfOf | object) as $o
          | (($o | .userId | text) // $pid) as $u
          | (($o | .identityStoreArn | text) // "identitystore") as $store
          | if $u then "identity-center:\($store):\($u)" else null end
        elif $kind == "WebIdentityUser" or $kind == "SAMLUser" then
          (($id.identityProvider | text) // "unknown-provider") as $provider
          | ($user // $pid) as $u
          | (if $kind == "SAMLUser" then "saml" else "web-identity" end) as $tag
          | if $u then "\($tag):\($provider):\($u)" else null end
        else
          $arn // (if $pid then "unknown:\($account):\($pid)" else null end)
        end
    end;

def outcome:
  (.errorCode | text) as $code
  | if $code == null then "success"
    else
      ($code | ascii_downcase) as $c
      | if [$c | contains("accessdenied", "unauthorized", "notauthorized", "forbidden",
                          "authfailure", "invalidclienttokenid", "signaturedoesnotmatch")] | any
        then "denied"
        elif [$c | contains("throttl", "limitexceeded", "slowdown")] | any then "throttled"
        else "failed"
        end
    end;

def record_account:
  if $acct != "" then $acct
  else ((.recipientAccountId | text) // (.userIdentity | object | .accountId | text)) | account_id
  end;

reduce (
  inputs
  | records
  | select(usable)
  | record_account as $a
  | select($a != null)
  | principal($a) as $p
  | select($p != null)
  | [$a, $p, .eventSource, .eventName, outcome]
  | tojson
) as $k ({}; .[$k] = true)
| keys_unsorted[]
