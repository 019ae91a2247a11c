#!/usr/bin/env bash
# azd preprovision hook: create or find the two Entra ID app registrations and record their client
# ids in the azd environment, where infra/main.parameters.json picks them up.
#
#   Graph app   (GRAPH_CLIENT_ID)  application permissions Calendars.ReadWrite + User.Read.All +
#                                  MailboxSettings.Read (mailbox time zones, for all-day items);
#                                  admin consent is checked or granted by postprovision.sh.
#   Sign-in app (AUTH_CLIENT_ID)   App Service Authentication; app role ADMIN_APP_ROLE
#                                  (Connector.Admin); ID tokens; redirect URI added by postprovision.
#
# Idempotent: an app whose client id is already in the environment, or that exists under the
# expected display name, is reused and brought to the expected state; nothing is duplicated.
# SKIP_APP_REGISTRATIONS=true: use GRAPH_CLIENT_ID and AUTH_CLIENT_ID as set, touch nothing.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
HOOK_NAME=preprovision
# shellcheck source=infra/scripts/common.sh
. "$(dirname "$0")/common.sh"

: "${AZURE_ENV_NAME:?run this through azd (azd provision / azd up)}"
ADMIN_APP_ROLE="${ADMIN_APP_ROLE:-Connector.Admin}"
GRAPH_APP_NAME="${GRAPH_APP_DISPLAY_NAME:-Dime.Scheduler Exchange connector (Graph) - ${AZURE_ENV_NAME}}"
SIGNIN_APP_NAME="${AUTH_APP_DISPLAY_NAME:-Dime.Scheduler Exchange connector (sign-in) - ${AZURE_ENV_NAME}}"

if [ "${SKIP_APP_REGISTRATIONS:-false}" = "true" ]; then
  [ -n "${GRAPH_CLIENT_ID:-}" ] && [ -n "${AUTH_CLIENT_ID:-}" ] \
    || die "SKIP_APP_REGISTRATIONS=true needs GRAPH_CLIENT_ID and AUTH_CLIENT_ID set with 'azd env set'."
  log "SKIP_APP_REGISTRATIONS=true: using the app registrations already set in the environment."
  exit 0
fi

require_tools az azd python3
require_az_login

az_tenant=$(az account show --query tenantId -o tsv)
if [ -n "${AZURE_TENANT_ID:-}" ] && [ "$AZURE_TENANT_ID" != "$az_tenant" ]; then
  die "az is signed in to tenant $az_tenant but azd deploys to $AZURE_TENANT_ID: run 'az login --tenant $AZURE_TENANT_ID'."
fi

# The app registration given by id (must exist), else the one with this display name, else a new one.
# Prints the appId; logs what it did.
ensure_app() {
  local label="$1" id_var="$2" given_id="$3" name="$4" app_id
  if [ -n "$given_id" ]; then
    az ad app show --id "$given_id" --query appId -o tsv >/dev/null \
      || die "$id_var=$given_id is not an app registration in tenant $az_tenant."
    log "$label: using $given_id ($id_var)."
    printf '%s' "$given_id"
    return
  fi
  app_id=$(find_app_by_name "$name")
  if [ -z "$app_id" ]; then
    app_id=$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg --query appId -o tsv)
    log "$label: created '$name' ($app_id)."
  else
    log "$label: found '$name' ($app_id)."
  fi
  printf '%s' "$app_id"
}

# ---- Graph app ---------------------------------------------------------------------------
graph_app_id=$(ensure_app "Graph app" GRAPH_CLIENT_ID "${GRAPH_CLIENT_ID:-}" "$GRAPH_APP_NAME")

# Application permissions, looked up by name on the Microsoft Graph service principal.
graph_roles=$(az ad sp show --id "$GRAPH_RESOURCE_APP_ID" --query "appRoles[?value=='Calendars.ReadWrite' || value=='User.Read.All' || value=='MailboxSettings.Read'].{id:id,value:value}" -o json)
required_access=$(printf '%s' "$graph_roles" | python3 -c '
import json, sys
roles = {r["value"]: r["id"] for r in json.load(sys.stdin)}
wanted = ("Calendars.ReadWrite", "User.Read.All", "MailboxSettings.Read")
missing = set(wanted) - roles.keys()
if missing:
    sys.exit("Microsoft Graph app roles not found: " + ", ".join(sorted(missing)))
print(json.dumps([{"resourceAppId": sys.argv[1],
                   "resourceAccess": [{"id": roles[v], "type": "Role"} for v in wanted]}]))
' "$GRAPH_RESOURCE_APP_ID")
az ad app update --id "$graph_app_id" --required-resource-accesses "$required_access"
ensure_service_principal "$graph_app_id" >/dev/null
azd env set GRAPH_CLIENT_ID "$graph_app_id"

# ---- Sign-in app -------------------------------------------------------------------------
signin_app_id=$(ensure_app "Sign-in app" AUTH_CLIENT_ID "${AUTH_CLIENT_ID:-}" "$SIGNIN_APP_NAME")

# Easy Auth signs users in with an ID token (no client secret).
az ad app update --id "$signin_app_id" --enable-id-token-issuance true

# The admin app role: added once, with a fresh id; an existing role keeps its id (Entra refuses to
# change the id of an enabled role).
roles_file="$(scratch_dir)/app-roles.json"
az ad app show --id "$signin_app_id" --query appRoles -o json | python3 -c '
import json, sys
roles, value, new_id, path = json.load(sys.stdin), sys.argv[1], sys.argv[2], sys.argv[3]
if any(r.get("value") == value for r in roles):
    sys.exit(0)
roles.append({"allowedMemberTypes": ["User"], "description": "Administers the Dime.Scheduler Exchange connector "
              "(all resources, activity, retries).", "displayName": "Connector administrator", "id": new_id,
              "isEnabled": True, "value": value})
with open(path, "w") as f:
    json.dump(roles, f)
' "$ADMIN_APP_ROLE" "$(new_uuid)" "$roles_file"
if [ -s "$roles_file" ]; then
  az ad app update --id "$signin_app_id" --app-roles "@$roles_file"
  log "Sign-in app: added app role $ADMIN_APP_ROLE."
fi
ensure_service_principal "$signin_app_id" >/dev/null
azd env set AUTH_CLIENT_ID "$signin_app_id"

log "App registrations ready: GRAPH_CLIENT_ID=$graph_app_id AUTH_CLIENT_ID=$signin_app_id"
