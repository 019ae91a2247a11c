// Key Vault for the connector's secrets, in RBAC mode. The function app reads the secrets through
// Key Vault references in its app settings (resolved by the platform with the user-assigned
// identity), so no secret value is ever an app setting or a deployment output.
//
// A secret is written here only when its value is passed in. Otherwise the azd postprovision hook
// (infra/scripts/postprovision.sh) or the operator sets it with `az keyvault secret set`, and a
// later `azd provision` without the value leaves it alone instead of overwriting it.

@description('Key Vault name (3-24 characters, globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Principal (object) id of the function app identity (reads secrets).')
param identityPrincipalId string

@description('Principal (object) id of whoever runs azd (writes secrets in the postprovision hook). Empty: no assignment.')
param deployerPrincipalId string = ''

@description('Type of the deployer principal.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

@description('Graph authentication mode: decides which Graph credential secret the app references.')
@allowed([
  'client_secret'
  'certificate'
  'managed_identity'
])
param graphAuthMode string

@description('Days a deleted vault or secret stays recoverable (7-90).')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@secure()
@description('Dime.Scheduler API key. Empty: keep the secret as it is (set it with az keyvault secret set).')
param dimeSchedulerApiKey string = ''

@secure()
@description('Shared secret of the Dime.Scheduler webhooks. Empty: keep it (the postprovision hook generates one).')
param schedulerWebhookSecret string = ''

@secure()
@description('Graph app client secret (client_secret mode only). Empty: keep it (the postprovision hook creates one).')
param graphClientSecret string = ''

// Secret names: the app settings reference them (app/api.bicep) and the hooks write them.
var dsApiKeySecretName = 'ds-api-key'
var webhookSecretName = 'scheduler-webhook-secret'
var graphClientSecretName = 'graph-client-secret'
var graphClientCertificateName = 'graph-client-certificate'

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccacf2b6ae5'
var keyVaultCertificatesOfficer = 'a4417e6f-fecd-4de8-b567-7b0420556985'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  //checkov:skip=CKV_AZURE_109: The Flex Consumption app has no VNet integration here, so the platform resolves Key Vault references over the public endpoint; access is Entra ID RBAC only. Add VNet integration + a private endpoint to close it.
  //checkov:skip=CKV_AZURE_189: Same reason as CKV_AZURE_109.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource dsApiKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(dimeSchedulerApiKey)) {
  //checkov:skip=CKV_AZURE_114: False positive: contentType is set below; checkov does not read the properties of a conditional (if) resource.
  //checkov:skip=CKV_AZURE_41: The Dime.Scheduler API key has no expiry of its own; rotation is documented in docs/deployment.md.
  parent: vault
  name: dsApiKeySecretName
  properties: {
    value: dimeSchedulerApiKey
    contentType: 'text/plain'
  }
}

resource webhookSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(schedulerWebhookSecret)) {
  //checkov:skip=CKV_AZURE_114: False positive: contentType is set below; checkov does not read the properties of a conditional (if) resource.
  //checkov:skip=CKV_AZURE_41: A shared webhook secret has no expiry; rotation is documented in docs/deployment.md.
  parent: vault
  name: webhookSecretName
  properties: {
    value: schedulerWebhookSecret
    contentType: 'text/plain'
  }
}

resource graphSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (graphAuthMode == 'client_secret' && !empty(graphClientSecret)) {
  //checkov:skip=CKV_AZURE_114: False positive: contentType is set below; checkov does not read the properties of a conditional (if) resource.
  //checkov:skip=CKV_AZURE_41: The expiry belongs to the app registration credential; the postprovision hook copies it onto the secrets it creates.
  parent: vault
  name: graphClientSecretName
  properties: {
    value: graphClientSecret
    contentType: 'text/plain'
  }
}

// The app only reads secrets (Key Vault references, including the PEM secret behind a certificate).
resource identitySecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identityPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
  }
}

// The postprovision hook, run as the deployer, creates the webhook secret and the Graph credential.
resource deployerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
  }
}

// Certificate mode only: the hook creates the self-signed Graph certificate in the vault.
resource deployerCertificatesOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId) && graphAuthMode == 'certificate') {
  name: guid(vault.id, deployerPrincipalId, keyVaultCertificatesOfficer)
  scope: vault
  properties: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCertificatesOfficer)
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
output dsApiKeySecretName string = dsApiKeySecretName
output webhookSecretName string = webhookSecretName
output graphClientSecretName string = graphClientSecretName
output graphClientCertificateName string = graphClientCertificateName
