// The storage account behind the Functions host and the connector's state: the Flex Consumption
// deployment container, the two work queues (and their poison queues), and the state tables.
// Shared keys are off: the host and the code reach it with the managed identity only.

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Blob container that Flex Consumption deploys the app package to.')
param deploymentContainerName string

@description('Principal (object) id of the function app identity.')
param identityPrincipalId string

@description('Storage redundancy.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
])
param skuName string = 'Standard_LRS'

// Queues named in connector/stores/ (queue triggers in functions/ and the admin monitor's poison view). The
// host would create the -poison queues on first failure; creating them up front lets the monitor
// read them from day one.
var queueNames = [
  'exchange-changes'
  'exchange-changes-poison'
  'planning-changes'
  'planning-changes-poison'
]

// Tables the repositories in connector/stores/ read and write (see docs/deployment.md).
var tableNames = [
  'mappings'
  'subscriptions'
  'settings'
  'activity'
  'cursors'
  'window'
]

// Built-in role definition ids (docs/deployment.md lists them with the reason for each).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var roleIds = [
  // Host: deployment package (Flex), blob leases for timer singletons and host keys.
  storageBlobDataOwner
  // Host queue triggers and poison handling; the code enqueues and the monitor retries poison.
  storageQueueDataContributor
  // The repositories in connector/stores/ (mappings, subscriptions, settings, activity, cursors, window).
  storageTableDataContributor
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  //checkov:skip=CKV_AZURE_35: Graph and Dime.Scheduler webhooks reach the Flex Consumption app without VNet integration, so the app reaches storage over the public endpoint; access is Entra ID only (allowSharedKeyAccess false). Add VNet integration + private endpoints to deny public network access.
  //checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35: public endpoint, identity-only access.
  //checkov:skip=CKV_AZURE_206: Redundancy is a parameter (skuName); LRS is the default because all state can be rebuilt by a full sync.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queueName in queueNames: {
  parent: queueService
  name: queueName
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for tableName in tableNames: {
  parent: tableService
  name: tableName
}]

resource identityRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in roleIds: {
  name: guid(storage.id, identityPrincipalId, roleId)
  scope: storage
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
  }
}]

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output deploymentContainerName string = deploymentContainer.name
