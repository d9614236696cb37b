// Key Vault for the app's own secret: the AES-256 key that seals customers' client secrets at
// rest. RBAC mode (no access policies) and purge protection: a deleted vault or key can be
// recovered for the retention period, and nobody can purge it early, because losing the key
// makes every stored client secret unreadable.

@description('Key Vault name: 3-24 letters, digits and hyphens, starting with a letter.')
@minLength(3)
@maxLength(24)
param name string

param location string
param tags object = {}

@description('Principal id of the app\'s user-assigned identity (reads the secrets).')
param principalId string

@secure()
@description('New value of the encryption key (base64 of 32 random bytes). Empty keeps the vault\'s current value.')
param secretEncryptionKey string = ''

@secure()
@description('Previous encryption keys still needed to open secrets sealed before a rotation. Empty removes the reference.')
param secretEncryptionOldKeys string = ''

// Key Vault secret names allow only letters, digits and hyphens, so the setting names are spelled with hyphens.
var keySecretName = 'secret-encryption-key'
var oldKeysSecretName = 'secret-encryption-old-keys'
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enablePurgeProtection: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    publicNetworkAccess: 'Enabled'
  }
}

resource keySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(secretEncryptionKey)) {
  parent: vault
  name: keySecretName
  properties: {
    value: secretEncryptionKey
    contentType: 'AES-256 key, base64'
  }
}

resource oldKeysSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(secretEncryptionOldKeys)) {
  parent: vault
  name: oldKeysSecretName
  properties: {
    value: secretEncryptionOldKeys
    contentType: 'previous AES-256 keys, base64, comma-separated'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

var versionlessKeyUri = '${vault.properties.vaultUri}secrets/${keySecretName}/'

output name string = vault.name
output uri string = vault.properties.vaultUri
// A deployment that writes the key pins the reference to that version, so the app switches at
// once; one that keeps the key refers to the latest version.
output secretEncryptionKeyUri string = empty(secretEncryptionKey) ? versionlessKeyUri : keySecret!.properties.secretUriWithVersion
output secretEncryptionOldKeysUri string = empty(secretEncryptionOldKeys) ? '' : oldKeysSecret!.properties.secretUriWithVersion
