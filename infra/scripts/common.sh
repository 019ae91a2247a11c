# Helpers shared by the azd hooks (sourced, not run). Bash only.
# Nothing here prints a secret: secret values travel through files created with umask 077 and
# removed on exit, never through arguments (visible in ps) or stdout.

GRAPH_RESOURCE_APP_ID=00000003-0000-0000-c000-000000000000   # Microsoft Graph

log() { printf '%s: %s\n' "${HOOK_NAME:-hook}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed or not on PATH (see docs/deployment.md, Prerequisites)."
  done
}

require_az_login() {
  az account show --query id -o tsv >/dev/null 2>&1 \
    || die "the Azure CLI is not signed in: run 'az login' (the hooks use az; 'azd auth login' alone is not enough)."
}

# A private scratch directory for secret material, made when this file is sourced (in the main
# shell, so the trap is the script's) and removed when the script exits.
SCRATCH_DIR=$(umask 077 && mktemp -d)
trap 'rm -rf "$SCRATCH_DIR"' EXIT
scratch_dir() { printf '%s' "$SCRATCH_DIR"; }

new_uuid() { python3 -c 'import uuid; print(uuid.uuid4())'; }

# Find an app registration by display name: prints its appId, nothing if none, fails if several.
find_app_by_name() {
  local name="$1" ids count
  ids=$(az ad app list --filter "displayName eq '$name'" --query "[].appId" -o tsv)
  count=$(printf '%s' "$ids" | grep -c . || true)
  if [ "$count" -gt 1 ]; then
    die "several app registrations are named '$name'; set the client id to use with 'azd env set' (see docs/deployment.md)."
  fi
  printf '%s' "$ids"
}

ensure_service_principal() {
  az ad sp show --id "$1" --query id -o tsv 2>/dev/null || az ad sp create --id "$1" --query id -o tsv
}

# Key Vault data-plane calls right after provisioning can fail with 403 until the new role
# assignment (Key Vault Secrets Officer) has propagated: retry those for up to ~3 minutes.
kv_retry() {
  local attempt err
  err="$(scratch_dir)/kv-error"
  for attempt in 1 2 3 4 5 6 7 8 9 10 11 12; do
    if "$@" 2>"$err"; then return 0; fi
    if grep -qiE 'forbidden|not authorized|ForbiddenByRbac' "$err"; then
      log "Key Vault denied access (role assignment still propagating?), retrying in 15 s ($attempt/12)."
      sleep 15
      continue
    fi
    cat "$err" >&2
    return 1
  done
  cat "$err" >&2
  return 1
}

# kv_exists secret|certificate VAULT NAME: 0 when it exists, 1 when it does not; other errors fail.
kv_exists() {
  local kind="$1" vault="$2" name="$3" attempt err
  err="$(scratch_dir)/kv-exists-error"
  for attempt in 1 2 3 4 5 6 7 8 9 10 11 12; do
    if az keyvault "$kind" show --vault-name "$vault" --name "$name" --query id -o tsv >/dev/null 2>"$err"; then
      return 0
    fi
    if grep -qiE 'NotFound|was not found' "$err"; then
      return 1
    fi
    if grep -qiE 'forbidden|not authorized' "$err"; then
      log "Key Vault denied access (role assignment still propagating?), retrying in 15 s ($attempt/12)."
      sleep 15
      continue
    fi
    cat "$err" >&2
    die "could not read $kind '$name' in Key Vault '$vault'."
  done
  die "Key Vault '$vault' still denies access: check that you have Key Vault Secrets Officer on it (docs/deployment.md)."
}

# kv_set_secret_from_file VAULT NAME FILE [EXPIRES]: store the file's content (no trailing newline
# expected) as the secret; the value is never on a command line.
kv_set_secret_from_file() {
  local vault="$1" name="$2" file="$3" expires="${4:-}"
  if [ -n "$expires" ]; then
    kv_retry az keyvault secret set --vault-name "$vault" --name "$name" --file "$file" --encoding utf-8 \
      --content-type text/plain --expires "$expires" --output none
  else
    kv_retry az keyvault secret set --vault-name "$vault" --name "$name" --file "$file" --encoding utf-8 \
      --content-type text/plain --output none
  fi
}
