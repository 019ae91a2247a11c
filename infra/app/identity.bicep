// The user-assigned managed identity the function app runs as. One identity for everything the
// app reaches (storage, Key Vault references, Application Insights, and, in secretless mode, the
// federated credential of the Graph app registration), so its client id is known before the site
// exists and survives re-creating the site.

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region.')
param location string

@description('Tags for the resource.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
