#!/usr/bin/env bash
# azd postprovision hook: finish what needs the deployed resources, then print the URLs.
#
#   1. Sign-in app: add the Easy Auth redirect URI https://<app>/.auth/login/aad/callback.
#   2. Key Vault: generate the Dime.Scheduler webhook secret if there is none; ask for the
#      Dime.Scheduler API key if there is none (interactive only; otherwise print the command).
#   3. Graph credential, by GRAPH_AUTH_MODE:
#        managed_identity  federated identity credential on the Graph app: the app's user-assigned
#                          identity (issuer login.microsoftonline.com/<tenant>/v2.0, subject = its
#                          principal id, audience api://AzureADTokenExchange). No secret exists.
#        client_secret     a client secret on the Graph app, written straight into Key Vault.
#        certificate       a self-signed certificate created in Key Vault (PEM), its public part
#                          added to the Graph app.
#   4. Admin consent for Calendars.ReadWrite + User.Read.All + MailboxSettings.Read: checked; granted when
#      GRANT_ADMIN_CONSENT=true (needs Privileged Role Administrator or Global Administrator),
#      otherwise the command is printed.
#   5. Connector.Admin for the signed-in user (ASSIGN_ADMIN_ROLE_TO_ME=false to skip).
#   6. Restart the app when a secret changed, so its Key Vault references resolve again.
#
# Idempotent: each step checks first and changes only what is missing. Never prints a secret.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
HOOK_NAME=postprovision
# shellcheck source=infra/scripts/common.sh
. "$(dirname "$0")/common.sh"

for name in AZURE_ENV_NAME AZURE_RESOURCE_GROUP AZURE_FUNCTION_APP_NAME AZURE_KEY_VAULT_NAME \
  AZURE_TENANT_ID AZURE_USER_ASSIGNED_IDENTITY_PRINCIPAL_ID GRAPH_CLIENT_ID AUTH_CLIENT_ID \
  AUTH_REDIRECT_URI DS_API_KEY_SECRET_NAME SCHEDULER_WEBHOOK_SECRET_NAME GRAPH_CLIENT_SECRET_NAME \
  GRAPH_CLIENT_CERTIFICATE_NAME; do
  [ -n "${!name:-}" ] || die "$name is not set: run this through azd after a successful provision."
done
GRAPH_AUTH_MODE="${GRAPH_AUTH_MODE:-managed_identity}"
ADMIN_APP_ROLE="${ADMIN_APP_ROLE:-Connector.Admin}"
KV="$AZURE_KEY_VAULT_NAME"
secrets_changed=false

require_tools az python3
require_az_login

# ---- 1. Sign-in redirect URI -------------------------------------------------------------
if [ "${SKIP_APP_REGISTRATIONS:-false}" = "true" ]; then
  log "SKIP_APP_REGISTRATIONS=true: add $AUTH_REDIRECT_URI as a Web redirect URI of app $AUTH_CLIENT_ID yourself."
else
  redirect_uris=$(az ad app show --id "$AUTH_CLIENT_ID" --query "web.redirectUris" -o json | python3 -c '
import json, sys
uris = json.load(sys.stdin) or []
if sys.argv[1] in uris:
    sys.exit(0)
print(" ".join(uris + [sys.argv[1]]))
' "$AUTH_REDIRECT_URI")
  if [ -n "$redirect_uris" ]; then
    # shellcheck disable=SC2086  # one argument per URI (URIs contain no spaces)
    az ad app update --id "$AUTH_CLIENT_ID" --web-redirect-uris $redirect_uris
    log "Sign-in app: added redirect URI $AUTH_REDIRECT_URI."
  else
    log "Sign-in app: redirect URI already present."
  fi
fi

# ---- 2. Dime.Scheduler secrets -----------------------------------------------------------
if kv_exists secret "$KV" "$SCHEDULER_WEBHOOK_SECRET_NAME"; then
  log "Key Vault: $SCHEDULER_WEBHOOK_SECRET_NAME present."
else
  file="$(scratch_dir)/webhook-secret"
  python3 -c 'import secrets, sys; sys.stdout.write(secrets.token_urlsafe(48))' >"$file"
  kv_set_secret_from_file "$KV" "$SCHEDULER_WEBHOOK_SECRET_NAME" "$file"
  rm -f "$file"
  secrets_changed=true
  log "Key Vault: generated $SCHEDULER_WEBHOOK_SECRET_NAME (value not shown)."
fi

if kv_exists secret "$KV" "$DS_API_KEY_SECRET_NAME"; then
  log "Key Vault: $DS_API_KEY_SECRET_NAME present."
elif [ -t 0 ] && [ -t 2 ] && [ "${CI:-}" != "true" ]; then
  printf 'Dime.Scheduler API key (input hidden; empty to set it later): ' >&2
  IFS= read -r -s api_key || api_key=""
  printf '\n' >&2
  if [ -n "$api_key" ]; then
    file="$(scratch_dir)/ds-api-key"
    printf '%s' "$api_key" >"$file"
    unset api_key
    kv_set_secret_from_file "$KV" "$DS_API_KEY_SECRET_NAME" "$file"
    rm -f "$file"
    secrets_changed=true
    log "Key Vault: stored $DS_API_KEY_SECRET_NAME."
  else
    log "WARNING: no Dime.Scheduler API key yet; the connector cannot reach Dime.Scheduler until you run:"
    log "  az keyvault secret set --vault-name $KV --name $DS_API_KEY_SECRET_NAME --file <file-with-the-key> --encoding utf-8"
  fi
else
  log "WARNING: Key Vault has no $DS_API_KEY_SECRET_NAME; set it (then restart the app):"
  log "  az keyvault secret set --vault-name $KV --name $DS_API_KEY_SECRET_NAME --file <file-with-the-key> --encoding utf-8"
fi

# ---- 3. Graph credential -----------------------------------------------------------------
case "$GRAPH_AUTH_MODE" in
  managed_identity)
    issuer="https://login.microsoftonline.com/${AZURE_TENANT_ID}/v2.0"
    subject="$AZURE_USER_ASSIGNED_IDENTITY_PRINCIPAL_ID"
    existing=$(az ad app federated-credential list --id "$GRAPH_CLIENT_ID" \
      --query "[?subject=='$subject' && issuer=='$issuer'] | length(@)" -o tsv)
    if [ "${existing:-0}" -gt 0 ]; then
      log "Graph app: federated identity credential for the app's managed identity present."
    else
      fic_file="$(scratch_dir)/fic.json"
      python3 -c '
import json, sys
name, issuer, subject, path = sys.argv[1:5]
json.dump({"name": name, "issuer": issuer, "subject": subject, "audiences": ["api://AzureADTokenExchange"],
           "description": "Secretless Graph access for the connector function app (user-assigned identity)."},
          open(path, "w"))
' "${AZURE_FUNCTION_APP_NAME}-identity" "$issuer" "$subject" "$fic_file"
      az ad app federated-credential create --id "$GRAPH_CLIENT_ID" --parameters "@$fic_file" --output none
      log "Graph app: added federated identity credential (subject $subject) - no client secret needed."
    fi
    if [ -n "${GRAPH_TENANT_ID:-}" ] && [ "$GRAPH_TENANT_ID" != "$AZURE_TENANT_ID" ]; then
      log "WARNING: GRAPH_TENANT_ID differs from the subscription's tenant: secretless mode needs the Graph app to be"
      log "  multi-tenant and consented in $GRAPH_TENANT_ID (docs/deployment.md, 'Secretless or client secret')."
    fi
    ;;
  client_secret)
    if kv_exists secret "$KV" "$GRAPH_CLIENT_SECRET_NAME"; then
      log "Key Vault: $GRAPH_CLIENT_SECRET_NAME present (rotate: docs/deployment.md)."
    else
      end_date=$(python3 -c 'import datetime as d; print((d.datetime.now(d.timezone.utc) + d.timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ"))')
      file="$(scratch_dir)/graph-client-secret"
      # The password goes from az straight into a private file, then into Key Vault.
      az ad app credential reset --id "$GRAPH_CLIENT_ID" --append --display-name "azd-${AZURE_ENV_NAME}" \
        --end-date "$end_date" --query password -o tsv | tr -d '\r\n' >"$file"
      [ -s "$file" ] || die "creating a client secret on the Graph app failed."
      kv_set_secret_from_file "$KV" "$GRAPH_CLIENT_SECRET_NAME" "$file" "$end_date"
      rm -f "$file"
      secrets_changed=true
      log "Graph app: created a client secret (expires $end_date) and stored it as $GRAPH_CLIENT_SECRET_NAME (value not shown)."
    fi
    ;;
  certificate)
    if kv_exists certificate "$KV" "$GRAPH_CLIENT_CERTIFICATE_NAME"; then
      log "Key Vault: certificate $GRAPH_CLIENT_CERTIFICATE_NAME present."
    else
      policy="$(scratch_dir)/policy.json"
      az keyvault certificate get-default-policy -o json | python3 -c '
import json, sys
policy = json.load(sys.stdin)
policy["secretProperties"] = {"contentType": "application/x-pem-file"}  # the app reads PEM (key + cert)
policy["x509CertificateProperties"]["subject"] = "CN=" + sys.argv[1]
policy["x509CertificateProperties"]["validityInMonths"] = 12
json.dump(policy, open(sys.argv[2], "w"))
' "$AZURE_FUNCTION_APP_NAME" "$policy"
      kv_retry az keyvault certificate create --vault-name "$KV" --name "$GRAPH_CLIENT_CERTIFICATE_NAME" \
        --policy "@$policy" --output none
      public_cert="$(scratch_dir)/graph-cert.pem"
      az keyvault certificate download --vault-name "$KV" --name "$GRAPH_CLIENT_CERTIFICATE_NAME" \
        --file "$public_cert" --encoding PEM
      az ad app credential reset --id "$GRAPH_CLIENT_ID" --append --cert "@$public_cert" --output none
      secrets_changed=true
      log "Graph app: created certificate $GRAPH_CLIENT_CERTIFICATE_NAME in Key Vault and added its public key to the app."
    fi
    ;;
  *)
    die "GRAPH_AUTH_MODE=$GRAPH_AUTH_MODE is not one of managed_identity, client_secret, certificate."
    ;;
esac

# ---- 4. Admin consent for the Graph application permissions ------------------------------
graph_sp_id=$(az ad sp show --id "$GRAPH_RESOURCE_APP_ID" --query id -o tsv)
app_sp_id=$(ensure_service_principal "$GRAPH_CLIENT_ID")
wanted=$(az ad sp show --id "$GRAPH_RESOURCE_APP_ID" \
  --query "appRoles[?value=='Calendars.ReadWrite' || value=='User.Read.All' || value=='MailboxSettings.Read'].id" -o tsv | sort)
[ "$(printf '%s\n' "$wanted" | grep -c .)" -eq 3 ] || die "could not look up the Microsoft Graph app roles Calendars.ReadWrite, User.Read.All and MailboxSettings.Read."
granted=$(az rest --method GET \
  --url "https://graph.microsoft.com/v1.0/servicePrincipals/${app_sp_id}/appRoleAssignments" \
  --query "value[?resourceId=='${graph_sp_id}'].appRoleId" -o tsv | sort)
missing=$(comm -23 <(printf '%s\n' "$wanted") <(printf '%s\n' "$granted") | grep -c . || true)
if [ "$missing" -eq 0 ]; then
  log "Graph app: admin consent for Calendars.ReadWrite, User.Read.All and MailboxSettings.Read granted."
elif [ "${GRANT_ADMIN_CONSENT:-false}" = "true" ]; then
  if az ad app permission admin-consent --id "$GRAPH_CLIENT_ID"; then
    log "Graph app: admin consent granted."
  else
    log "WARNING: admin consent failed (it needs Privileged Role Administrator or Global Administrator); ask an admin to run:"
    log "  az ad app permission admin-consent --id $GRAPH_CLIENT_ID"
  fi
else
  log "ACTION NEEDED: an administrator must grant admin consent to the Graph app (Calendars.ReadWrite, User.Read.All, MailboxSettings.Read):"
  log "  az ad app permission admin-consent --id $GRAPH_CLIENT_ID"
  log "  or Entra admin center > App registrations > $GRAPH_CLIENT_ID > API permissions > Grant admin consent."
  log "  (Set GRANT_ADMIN_CONSENT=true with 'azd env set' to let this hook do it.)"
fi

# ---- 5. Connector.Admin for the signed-in user -------------------------------------------
if [ "${ASSIGN_ADMIN_ROLE_TO_ME:-true}" = "true" ] && [ "${AZURE_PRINCIPAL_TYPE:-User}" = "User" ]; then
  me=$(az ad signed-in-user show --query id -o tsv)
  signin_sp_id=$(ensure_service_principal "$AUTH_CLIENT_ID")
  role_id=$(az ad app show --id "$AUTH_CLIENT_ID" --query "appRoles[?value=='${ADMIN_APP_ROLE}'].id | [0]" -o tsv)
  if [ -z "$role_id" ]; then
    log "WARNING: the sign-in app has no app role $ADMIN_APP_ROLE (run 'azd provision' again to let preprovision add it)."
  else
    assigned=$(az rest --method GET \
      --url "https://graph.microsoft.com/v1.0/servicePrincipals/${signin_sp_id}/appRoleAssignedTo" \
      --query "value[?principalId=='${me}' && appRoleId=='${role_id}'] | length(@)" -o tsv)
    if [ "${assigned:-0}" -gt 0 ]; then
      log "Sign-in app: you already have $ADMIN_APP_ROLE."
    else
      az rest --method POST \
        --url "https://graph.microsoft.com/v1.0/servicePrincipals/${signin_sp_id}/appRoleAssignedTo" \
        --headers "Content-Type=application/json" \
        --body "{\"principalId\": \"${me}\", \"resourceId\": \"${signin_sp_id}\", \"appRoleId\": \"${role_id}\"}" \
        --output none
      log "Sign-in app: gave you $ADMIN_APP_ROLE (sign out and in again to get the claim)."
    fi
  fi
fi

# ---- 6. Re-resolve Key Vault references ---------------------------------------------------
if [ "$secrets_changed" = "true" ]; then
  az functionapp restart --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" --output none
  log "Restarted $AZURE_FUNCTION_APP_NAME so its Key Vault references pick up the new secrets."
fi

cat >&2 <<INFO

Connector endpoints (environment $AZURE_ENV_NAME):
  Health              ${HEALTH_URL:-}
  Settings page       ${SETTINGS_PAGE_URL:-}
  Admin monitor       ${MONITOR_URL:-}
  Graph webhooks      ${GRAPH_NOTIFICATION_URL:-}  |  ${GRAPH_LIFECYCLE_URL:-}
  Dime.Scheduler hook ${SCHEDULER_NOTIFICATION_URL:-}
Next: docs/deployment.md, "After the first deployment".
INFO
