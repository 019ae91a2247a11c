// Dime.Scheduler <-> Exchange connector: everything the function app needs in Azure, deployed by
// `azd up` (see docs/deployment.md). Subscription scope: azd creates the resource group here.
//
//   identity    user-assigned managed identity the app runs as
//   storage     AzureWebJobsStorage (identity-based): deployment container, queues, tables
//   key vault   RBAC mode; Dime.Scheduler API key, webhook secret, Graph credential (unless secretless)
//   monitoring  Log Analytics + Application Insights (Entra auth only)
//   api         Flex Consumption plan + function app + app settings
//   auth        App Service Authentication (Entra ID) with the webhook and health routes excluded
//
// The two Entra ID app registrations (Graph app, sign-in app) are made by the azd hooks in
// infra/scripts/, not here: Bicep cannot create app registrations without the Graph extension.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; seeds the resource names.')
param environmentName string

@minLength(1)
@description('Azure region for all resources; must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group name; empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object id of the principal running azd (azd sets AZURE_PRINCIPAL_ID); gets Key Vault Secrets Officer so the postprovision hook can write secrets. Empty: none.')
param principalId string = ''

@description('Type of principalId.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

// ---- Microsoft Graph ----
@description('How the connector authenticates to Graph: managed_identity (secretless, federated credential), client_secret or certificate.')
@allowed([
  'managed_identity'
  'client_secret'
  'certificate'
])
param graphAuthMode string = 'managed_identity'

@description('Tenant of the Exchange Online mailboxes; empty: the tenant of this subscription.')
param graphTenantId string = ''

@minLength(1)
@description('Client id of the Graph app registration (set by the preprovision hook).')
param graphClientId string

@description('Microsoft Graph endpoint.')
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@secure()
@description('Graph client secret (client_secret mode); normally left empty: the postprovision hook creates it in Key Vault.')
param graphClientSecret string = ''

// ---- Sign-in (App Service Authentication) ----
@minLength(1)
@description('Client id of the sign-in app registration used by App Service Authentication (set by the preprovision hook).')
param authClientId string

@description('App role of the sign-in app that makes a user a connector admin.')
param adminAppRole string = 'Connector.Admin'

// ---- Dime.Scheduler ----
@description('Dime.Scheduler API endpoint.')
param dimeSchedulerBaseUrl string = 'https://api.dimescheduler.com'

@maxLength(30)
@description('SourceApp the connector registers its Dime.Scheduler webhooks under.')
param dimeSchedulerSourceApp string = 'EXCHANGECONNECTOR'

@secure()
@description('Dime.Scheduler API key; empty: keep what is in Key Vault (set it with az keyvault secret set).')
param dimeSchedulerApiKey string = ''

@secure()
@description('Shared secret of the Dime.Scheduler webhooks; empty: keep what is in Key Vault (the postprovision hook generates one).')
param schedulerWebhookSecret string = ''

// ---- Sync behaviour (strings: they become app settings as they are) ----
@allowed([
  'true'
  'false'
])
@description('Planning board to Outlook direction on/off.')
param syncToExchangeEnabled string = 'true'

@allowed([
  'true'
  'false'
])
@description('Outlook to planning board direction on/off.')
param syncToPlanningEnabled string = 'true'

@description('Days before today the sync covers (0-3650).')
param syncWindowPastDays string = '30'

@description('Days after today the sync covers (1-3650).')
param syncWindowFutureDays string = '180'

@description('Lifetime asked for Graph subscriptions, minutes (45-10080).')
param subscriptionLifetimeMinutes string = '4200'

@description('Renew Graph subscriptions expiring within this many minutes; smaller than the lifetime.')
param subscriptionRenewalMarginMinutes string = '1440'

@description('NCRONTAB (6 fields) of sync_resources.')
param syncResourcesSchedule string = '0 */15 * * * *'

@description('NCRONTAB of renew_subscriptions.')
param renewSubscriptionsSchedule string = '0 0 * * * *'

@description('NCRONTAB of poll_planning.')
param pollPlanningSchedule string = '0 */5 * * * *'

@description('NCRONTAB of reconcile_exchange.')
param reconcileExchangeSchedule string = '0 0 */6 * * *'

@description('Which appointments go to Outlook: include|exclude <field> <op> <value> rules separated by ; (README, Planning rules). Empty: all.')
param planningRules string = ''

@allowed([
  'restore_outlook'
  'ignore'
  'update_planning'
])
@description('When a resource edits or deletes a planner-owned event in Outlook: restore_outlook (the board wins), ignore, or update_planning.')
param outlookEditPolicy string = 'restore_outlook'

@allowed([
  'board'
  'outlook'
])
@description('When a planner and a person both changed a planner-owned appointment since the last sync: board (the planner\'s version is written) or outlook (the edit is taken onto the board).')
param conflictPolicy string = 'board'

@description('Attempts for a transiently failing change (throttled, service down) before it is parked as failed (1-50).')
param workMaxAttempts string = '12'

@description('Days the activity log is kept.')
param activityRetentionDays string = '30'

@description('Mass-change guard: a sync_resources run untracking more than this share (%) of the tracked resources is held for an admin (0-100).')
param massChangeUntrackPercent string = '20'

@description('Mass-change guard: the fewest resources one run must untrack before the share rule can hold it.')
param massChangeUntrackMin string = '2'

@description('Mass-change guard: an operation removing more than this many items from one calendar or one board is held for an admin.')
param massChangeMaxItems string = '50'

// ---- Hosting ----
@description('Public base URL when the app has a custom domain; empty: https://<app>.azurewebsites.net.')
param connectorCustomUrl string = ''

@minValue(1)
@maxValue(1000)
@description('Maximum instances Flex Consumption scales out to (bounds concurrent Graph traffic).')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Memory per Flex Consumption instance, MB.')
param instanceMemoryMB int = 2048

@minValue(0)
@maxValue(20)
@description('Always-ready instances for the HTTP functions, so Graph\'s webhooks never meet a cold start (3 s limit). 0 saves the baseline cost (docs/deployment.md).')
param alwaysReadyHttpInstances int = 1

@minValue(7)
@maxValue(90)
@description('Days a deleted Key Vault stays recoverable (purge protection is on).')
param keyVaultSoftDeleteRetentionDays int = 90

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-api-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var effectiveGraphTenantId = empty(graphTenantId) ? tenant().tenantId : graphTenantId

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-api-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    identityPrincipalId: identity.outputs.principalId
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    identityPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
    graphAuthMode: graphAuthMode
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionDays
    dimeSchedulerApiKey: dimeSchedulerApiKey
    schedulerWebhookSecret: schedulerWebhookSecret
    graphClientSecret: graphClientSecret
  }
}

module monitoring 'core/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
    identityPrincipalId: identity.outputs.principalId
  }
}

// Takes outputs of storage, keyVault and monitoring, so it is deployed after their role
// assignments: the app starts with its data-plane rights in place.
module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    keyVaultUri: keyVault.outputs.uri
    dsApiKeySecretName: keyVault.outputs.dsApiKeySecretName
    webhookSecretName: keyVault.outputs.webhookSecretName
    graphClientSecretName: keyVault.outputs.graphClientSecretName
    graphClientCertificateName: keyVault.outputs.graphClientCertificateName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    alwaysReadyHttpInstances: alwaysReadyHttpInstances
    publicUrl: connectorCustomUrl
    graphBaseUrl: graphBaseUrl
    graphAuthMode: graphAuthMode
    graphTenantId: effectiveGraphTenantId
    graphClientId: graphClientId
    dimeSchedulerBaseUrl: dimeSchedulerBaseUrl
    dimeSchedulerSourceApp: dimeSchedulerSourceApp
    syncToExchangeEnabled: syncToExchangeEnabled
    syncToPlanningEnabled: syncToPlanningEnabled
    syncWindowPastDays: syncWindowPastDays
    syncWindowFutureDays: syncWindowFutureDays
    subscriptionLifetimeMinutes: subscriptionLifetimeMinutes
    subscriptionRenewalMarginMinutes: subscriptionRenewalMarginMinutes
    syncResourcesSchedule: syncResourcesSchedule
    renewSubscriptionsSchedule: renewSubscriptionsSchedule
    pollPlanningSchedule: pollPlanningSchedule
    reconcileExchangeSchedule: reconcileExchangeSchedule
    planningRules: planningRules
    outlookEditPolicy: outlookEditPolicy
    conflictPolicy: conflictPolicy
    workMaxAttempts: workMaxAttempts
    massChangeUntrackPercent: massChangeUntrackPercent
    massChangeUntrackMin: massChangeUntrackMin
    massChangeMaxItems: massChangeMaxItems
    adminAppRole: adminAppRole
    activityRetentionDays: activityRetentionDays
  }
}

module auth 'app/auth.bicep' = {
  name: 'auth'
  scope: rg
  params: {
    functionAppName: api.outputs.name
    clientId: authClientId
    tenantId: tenant().tenantId
  }
}

var baseUrl = api.outputs.publicUrl

// Read by azd (deploy target, hooks) and printed for the operator. No secrets.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_URI string = keyVault.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_USER_ASSIGNED_IDENTITY_NAME string = identity.outputs.name
output AZURE_USER_ASSIGNED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_USER_ASSIGNED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_GRAPH_TENANT_ID string = effectiveGraphTenantId
output DS_API_KEY_SECRET_NAME string = keyVault.outputs.dsApiKeySecretName
output SCHEDULER_WEBHOOK_SECRET_NAME string = keyVault.outputs.webhookSecretName
output GRAPH_CLIENT_SECRET_NAME string = keyVault.outputs.graphClientSecretName
output GRAPH_CLIENT_CERTIFICATE_NAME string = keyVault.outputs.graphClientCertificateName
output CONNECTOR_PUBLIC_URL string = baseUrl
output AUTH_REDIRECT_URI string = '${baseUrl}/.auth/login/aad/callback'
output GRAPH_NOTIFICATION_URL string = '${baseUrl}/api/graph/notifications'
output GRAPH_LIFECYCLE_URL string = '${baseUrl}/api/graph/lifecycle'
output SCHEDULER_NOTIFICATION_URL string = '${baseUrl}/api/scheduler/notifications'
output HEALTH_URL string = '${baseUrl}/api/health'
output SETTINGS_PAGE_URL string = '${baseUrl}/api/ui/'
output MONITOR_URL string = '${baseUrl}/api/ui/admin'
