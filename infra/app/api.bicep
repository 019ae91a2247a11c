// The function app on a Flex Consumption plan, running as the user-assigned identity, and its app
// settings. Every setting here is one that connector/config.py declares in SETTINGS (the code reads
// nothing else) or one the Functions host itself reads; tests/infra/test_bicep.py holds this file
// against SETTINGS. Secrets are Key Vault references, resolved by the platform with the identity
// named in keyVaultReferenceIdentity.
//
// Not set, on purpose: FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION (Flex Consumption
// takes the runtime from functionAppConfig and rejects them), AzureWebJobsStorage as a connection
// string and GRAPH_STATIC_TOKEN (local emulator only).

@description('Function app name (also the default host name <name>.azurewebsites.net).')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('azd service name this app hosts (azure.yaml).')
param serviceName string = 'api'

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Client id of the user-assigned identity.')
param identityClientId string

@description('Storage account name (AzureWebJobsStorage, queues, tables).')
param storageAccountName string

@description('Blob endpoint of the storage account.')
param storageBlobEndpoint string

@description('Deployment package container (Flex Consumption).')
param deploymentContainerName string

@description('Key Vault URI (https://<vault>.vault.azure.net/).')
param keyVaultUri string

@description('Key Vault secret holding the Dime.Scheduler API key.')
param dsApiKeySecretName string

@description('Key Vault secret holding the Dime.Scheduler webhook secret.')
param webhookSecretName string

@description('Key Vault secret holding the Graph client secret (client_secret mode).')
param graphClientSecretName string

@description('Key Vault secret behind the Graph certificate, PEM with private key (certificate mode).')
param graphClientCertificateName string

@description('Application Insights connection string.')
param applicationInsightsConnectionString string

@description('Maximum number of instances Flex Consumption scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per instance (MB).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// Graph judges a notification answer at 3 s; a cold start (Python worker + imports) can take
// longer, so the HTTP functions keep warm instances (docs/deployment.md: cost).
@description('Always-ready instances for the HTTP functions (webhooks answer within Graph\'s 3 s).')
@minValue(0)
@maxValue(20)
param alwaysReadyHttpInstances int = 1

@description('Public base URL of the connector; empty: https://<name>.azurewebsites.net.')
param publicUrl string = ''

@description('Microsoft Graph endpoint.')
param graphBaseUrl string

@description('How the connector authenticates to Graph.')
@allowed([
  'client_secret'
  'certificate'
  'managed_identity'
])
param graphAuthMode string

@description('Entra ID tenant of the Graph app registration.')
param graphTenantId string

@description('Client id of the Graph app registration.')
param graphClientId string

@description('Dime.Scheduler API endpoint.')
param dimeSchedulerBaseUrl string

@description('The connector\'s own SourceApp (fallback when moving a planner\'s appointment whose job names none).')
@maxLength(30)
param dimeSchedulerSourceApp string

@description('Source Apps (back offices, e.g. BC;CRM) whose appointments the connector follows through webhooks, separated by ";". Empty: the Source Apps seen in the planning window.')
param dimeSchedulerWebhookSourceApps string = ''

@description('Planning board to Outlook direction on/off.')
@allowed([
  'true'
  'false'
])
param syncToExchangeEnabled string

@description('Outlook to planning board direction on/off.')
@allowed([
  'true'
  'false'
])
param syncToPlanningEnabled string

@description('Days before today the sync covers.')
param syncWindowPastDays string

@description('Days after today the sync covers.')
param syncWindowFutureDays string

@description('Lifetime asked for Graph subscriptions, minutes.')
param subscriptionLifetimeMinutes string

@description('Renew Graph subscriptions expiring within this many minutes.')
param subscriptionRenewalMarginMinutes string

@description('NCRONTAB of sync_resources.')
param syncResourcesSchedule string

@description('NCRONTAB of renew_subscriptions.')
param renewSubscriptionsSchedule string

@description('NCRONTAB of poll_planning.')
param pollPlanningSchedule string

@description('NCRONTAB of reconcile_exchange.')
param reconcileExchangeSchedule string

@description('Which appointments go to Outlook (include|exclude rules separated by ;); empty: all.')
param planningRules string

@description('What happens when a resource edits or deletes a planner-owned event in Outlook.')
@allowed([
  'restore_outlook'
  'ignore'
  'update_planning'
])
param outlookEditPolicy string
param conflictPolicy string

@description('Attempts for a transiently failing change before it is parked as failed.')
param workMaxAttempts string

@description('Mass-change guard: share (%) of the tracked resources one sync_resources run may untrack before it is held.')
param massChangeUntrackPercent string

@description('Mass-change guard: the fewest resources one run must untrack before the share rule can hold it.')
param massChangeUntrackMin string

@description('Mass-change guard: items one operation may remove from one calendar or one board before it is held.')
param massChangeMaxItems string

@description('App role of the sign-in app registration that makes a user a connector admin.')
param adminAppRole string

@description('Days the activity log is kept.')
param activityRetentionDays string

var connectorPublicUrl = empty(publicUrl) ? 'https://${name}.azurewebsites.net' : publicUrl

var appSettings = {
  // Functions host (queue triggers, timer leases) and connector/stores/storage.py (table and queue clients,
  // via connector/config.py StorageConfig): identity-based storage, no account key anywhere.
  AzureWebJobsStorage__accountName: storageAccountName
  // Functions host and connector/config.py: 'managedidentity' selects token auth for storage.
  AzureWebJobsStorage__credential: 'managedidentity'
  // Functions host and connector/stores/storage.py: which identity (the user-assigned one) gets the token.
  AzureWebJobsStorage__clientId: identityClientId
  // Host-owned: the Functions host and the telemetry setup in function_app.py send telemetry here.
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  // Host-owned: local auth is disabled on Application Insights, so the host authenticates with
  // the user-assigned identity (Monitoring Metrics Publisher).
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // connector/gateways/graph.py: Graph endpoint (national clouds differ).
  GRAPH_BASE_URL: graphBaseUrl
  // connector/gateways/graph.py: client_secret, certificate or managed_identity (secretless).
  GRAPH_AUTH_MODE: graphAuthMode
  // connector/gateways/graph.py: tenant whose mailboxes are synced (token authority).
  GRAPH_TENANT_ID: graphTenantId
  // connector/gateways/graph.py: the Graph app registration (Calendars.ReadWrite, User.Read.All).
  GRAPH_CLIENT_ID: graphClientId
  // connector/gateways/graph.py (managed_identity mode) and azure-identity: the user-assigned identity
  // whose token is the federated client assertion for the Graph app.
  AZURE_CLIENT_ID: identityClientId
  // connector/gateways/planning.py: Dime.Scheduler API endpoint.
  DS_BASE_URL: dimeSchedulerBaseUrl
  // connector/gateways/planning.py: X-API-KEY for Dime.Scheduler (Key Vault reference).
  DS_API_KEY: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${dsApiKeySecretName})'
  // connector/gateways/planning.py: the connector's own SourceApp (fallback for mboc_upsertAppointment).
  DS_SOURCE_APP: dimeSchedulerSourceApp
  // connector/workers/webhook_registration.py: Source Apps whose appointments get a webhook registration
  // (Dime.Scheduler routes appointment webhooks by the appointment's Source App).
  DS_WEBHOOK_SOURCE_APPS: dimeSchedulerWebhookSourceApps
  // connector/config.py Settings: base of the webhook URLs given to Graph subscriptions and
  // Dime.Scheduler webhook registrations.
  CONNECTOR_PUBLIC_URL: connectorPublicUrl
  // functions/ scheduler_notifications: shared secret Dime.Scheduler webhooks must carry (Key Vault reference).
  SCHEDULER_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${webhookSecretName})'
  // connector/sync: planning board to Outlook direction on/off.
  SYNC_TO_EXCHANGE_ENABLED: syncToExchangeEnabled
  // connector/sync: Outlook to planning board direction on/off.
  SYNC_TO_PLANNING_ENABLED: syncToPlanningEnabled
  // connector/sync and the timers: start of the sync window, days before today.
  SYNC_WINDOW_PAST_DAYS: syncWindowPastDays
  // connector/sync and the timers: end of the sync window, days after today.
  SYNC_WINDOW_FUTURE_DAYS: syncWindowFutureDays
  // sync_resources / renew_subscriptions: lifetime asked for Graph subscriptions.
  SUBSCRIPTION_LIFETIME_MINUTES: subscriptionLifetimeMinutes
  // renew_subscriptions: renew when a subscription expires within this margin.
  SUBSCRIPTION_RENEWAL_MARGIN_MINUTES: subscriptionRenewalMarginMinutes
  // Timer trigger of sync_resources (%SYNC_RESOURCES_SCHEDULE%, resolved by the host).
  SYNC_RESOURCES_SCHEDULE: syncResourcesSchedule
  // Timer trigger of renew_subscriptions (%RENEW_SUBSCRIPTIONS_SCHEDULE%).
  RENEW_SUBSCRIPTIONS_SCHEDULE: renewSubscriptionsSchedule
  // Timer trigger of poll_planning (%POLL_PLANNING_SCHEDULE%).
  POLL_PLANNING_SCHEDULE: pollPlanningSchedule
  // Timer trigger of reconcile_exchange (%RECONCILE_EXCHANGE_SCHEDULE%).
  RECONCILE_EXCHANGE_SCHEDULE: reconcileExchangeSchedule
  // connector/sync/rules.py via connector/sync/to_outlook.py: which appointments go to Outlook.
  PLANNING_RULES: planningRules
  // connector/sync/to_planning.py: what to do when someone edits or deletes a planner's event in Outlook.
  OUTLOOK_EDIT_POLICY: outlookEditPolicy
  // connector/workers/to_outlook.py: who wins when a planner and a person both changed an appointment.
  CONFLICT_POLICY: conflictPolicy
  // Queue workers: attempts for a transient failure before the change is parked as failed.
  WORK_MAX_ATTEMPTS: workMaxAttempts
  // connector/workers/resources.py (mass-change guard): share of the tracked resources one run may untrack.
  MASS_CHANGE_UNTRACK_PERCENT: massChangeUntrackPercent
  // connector/workers/resources.py (mass-change guard): the fewest untracks the share rule holds.
  MASS_CHANGE_UNTRACK_MIN: massChangeUntrackMin
  // connector/workers/poll.py and to_planning.py (mass-change guard): removals from one calendar or board at once.
  MASS_CHANGE_MAX_ITEMS: massChangeMaxItems
  // functions/ admin routes: the app role claim (from Easy Auth) that makes a user an admin.
  ADMIN_APP_ROLE: adminAppRole
  // Activity log clean-up: days the audit trail is kept.
  ACTIVITY_RETENTION_DAYS: activityRetentionDays
}

var graphSecretSettings = (graphAuthMode == 'client_secret') ? {
  // connector/gateways/graph.py (client_secret mode): the Graph app's client secret (Key Vault reference).
  GRAPH_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${graphClientSecretName})'
} : {}

var graphCertificateSettings = (graphAuthMode == 'certificate') ? {
  // connector/gateways/graph.py (certificate mode): PEM certificate + key (Key Vault reference to the
  // secret behind the Key Vault certificate).
  GRAPH_CLIENT_CERTIFICATE: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${graphClientCertificateName})'
} : {}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  //checkov:skip=CKV_AZURE_225: Zone-redundant Flex Consumption is not offered in every region and bills always-ready instances; the connector is at-least-once with timers that catch up (poll_planning, reconcile_exchange), so a zone outage delays sync without losing it.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  //checkov:skip=CKV_AZURE_222: Microsoft Graph and Dime.Scheduler deliver webhooks over the internet, so the app must be publicly reachable; every route but the webhooks and /api/health requires Entra sign-in (app/auth.bicep).
  //checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero on demand; always-ready instances would bill around the clock for a connector whose missed work is caught up by the timers.
  //checkov:skip=CKV_AZURE_213: Flex Consumption has no App Service health-check eviction to configure; /api/health checks downstream services too, so using it for instance eviction would recycle healthy instances whenever Dime.Scheduler or Graph is down. It is probed from outside instead (docs/deployment.md).
  //checkov:skip=CKV_AZURE_17: Client certificates would lock out Microsoft Graph and Dime.Scheduler, which call the webhook routes without one; those routes are validated by clientState and a shared secret, the rest by App Service Authentication.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        // 'http' covers every HTTP function: graph_notifications, graph_lifecycle and the rest.
        alwaysReady: [
          {
            name: 'http'
            instanceCount: alwaysReadyHttpInstances
          }
        ]
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  //checkov:skip=CKV_AZURE_13: False positive: checkov evaluates this sites/config child as if it were a site; authentication is configured in app/auth.bicep (authsettingsV2).
  //checkov:skip=CKV_AZURE_63: False positive (sites/config child evaluated as a site); HTTP logs of Flex Consumption go to Application Insights, not App Service file logging.
  //checkov:skip=CKV_AZURE_65: False positive (sites/config child evaluated as a site); detailed error pages are an App Service file-logging feature Flex Consumption does not have.
  //checkov:skip=CKV_AZURE_66: False positive (sites/config child evaluated as a site); failed request tracing is an App Service file-logging feature Flex Consumption does not have.
  //checkov:skip=CKV_AZURE_80: False positive (sites/config child evaluated as a site); this is a Python app, no .NET Framework.
  //checkov:skip=CKV_AZURE_88: False positive (sites/config child evaluated as a site); Flex Consumption has no Azure Files content share, by design.
  //checkov:skip=CKV_AZURE_222: False positive (sites/config child evaluated as a site); public access is decided on the site (see there).
  parent: functionApp
  name: 'appsettings'
  properties: union(appSettings, graphSecretSettings, graphCertificateSettings)
}

// azd deploys with an Entra token; nothing needs FTP or SCM basic-auth publishing credentials.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output id string = functionApp.id
output defaultHostName string = functionApp.properties.defaultHostName
output publicUrl string = connectorPublicUrl
