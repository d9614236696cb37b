// roomsync in the customer's own subscription: one resource group holding a Function App on the
// Flex Consumption plan, its Storage account, a user-assigned managed identity, a Key Vault for
// the secret encryption key, and Application Insights on a Log Analytics workspace.
//
// Deploy with `azd up` (parameters from main.parameters.json and the azd environment) or with
// `az deployment sub create --location <region> --template-file infra/main.bicep --parameters ...`.
// Every app setting the app reads is set in `appSettings` below; tests/unit/test_infra.py keeps
// that list and sync/settings.py in step.

targetScope = 'subscription'

@minLength(2)
@maxLength(20)
@description('Prefix of every resource name: lowercase letters, digits and hyphens (azd passes the environment name).')
param namePrefix string

@minLength(1)
@description('Azure region of every resource; it must offer the Flex Consumption plan.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create or reuse; empty means rg-<namePrefix>.')
param resourceGroupName string = ''

@description('Entra ID sign-in endpoint. Change for a national cloud, e.g. https://login.microsoftonline.us.')
param graphAuthorityHost string = 'https://login.microsoftonline.com'

@description('Microsoft Graph base URL with its version. Change for a national cloud, e.g. https://graph.microsoft.us/v1.0.')
param graphApiBase string = 'https://graph.microsoft.com/v1.0'

@description('Always-ready HTTP instances beyond the one every deployment keeps.')
@minValue(0)
@maxValue(20)
param extraAlwaysReadyInstances int = 0

@description('Memory of each instance in MB (see infra/modules/functionapp.bicep for the measured peak).')
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound of instances the app may scale out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@secure()
@description('SECRET_ENCRYPTION_KEY: base64 of 32 random bytes (make keygen). Required on the first deployment; empty afterwards keeps the vault\'s current key.')
param secretEncryptionKey string = ''

@secure()
@description('SECRET_ENCRYPTION_OLD_KEYS: previous keys, comma-separated, kept during a key rotation. Empty when no rotation is under way.')
param secretEncryptionOldKeys string = ''

@description('Days ahead that recurring reservations are materialised (RECURRENCE_HORIZON_DAYS).')
@minValue(1)
@maxValue(1080)
param recurrenceHorizonDays int = 90

@description('Most occurrences a bounded recurring reservation may have (RECURRENCE_MAX_OCCURRENCES).')
@minValue(1)
param recurrenceMaxOccurrences int = 730

@description('Age in seconds of an unsent booking change before the sweeper queues it again (BOOKING_SWEEP_AFTER_SECONDS).')
@minValue(30)
@maxValue(86400)
param bookingSweepAfterSeconds int = 120

@description('Share of active users a user sync may deactivate before it stops for confirmation.')
param userSyncMaxDeactivationShare string = '0.2'

@allowed([
  'DEBUG'
  'INFO'
  'WARNING'
  'ERROR'
])
param logLevel string = 'INFO'

// Timer schedules: NCRONTAB, six fields, UTC. The Functions host resolves them from the app
// settings by itself, so each must be set here; the defaults in sync/settings.py only serve Python.
param userSyncSchedule string = '0 0 2 * * *'
param subscriptionRenewalSchedule string = '0 */30 * * * *'
param recurrenceSchedule string = '0 30 1 * * *'
param bookingSweepSchedule string = '0 */5 * * * *'

var token = take(toLower(uniqueString(subscription().id, namePrefix, location)), 8)
var compactPrefix = toLower(replace(namePrefix, '-', ''))
var tags = {
  'azd-env-name': namePrefix
  application: 'roomsync'
}
var names = {
  resourceGroup: !empty(resourceGroupName) ? resourceGroupName : 'rg-${namePrefix}'
  identity: 'id-${namePrefix}-${token}'
  storage: take('st${compactPrefix}${token}', 24)
  keyVault: 'kv-${take(compactPrefix, 11)}-${token}'
  workspace: 'log-${namePrefix}-${token}'
  appInsights: 'appi-${namePrefix}-${token}'
  plan: 'plan-${namePrefix}-${token}'
  functionApp: 'func-${namePrefix}-${token}'
}
var deploymentContainerName = 'deployment-package'

// Every queue the app uses (sync/ and functions/ name them; tests/unit/test_infra.py checks the list).
var queueNames = [
  'user-sync'
  'user-events'
  'graph-notifications'
  'graph-lifecycle'
  'booking-changes'
  'calendar-resync'
  'reservation-events'
  'integration-purge'
  'leaver-releases'
]

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: names.storage
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    deploymentContainerName: deploymentContainerName
    queueNames: queueNames
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: names.workspace
    appInsightsName: names.appInsights
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: names.keyVault
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    secretEncryptionKey: secretEncryptionKey
    secretEncryptionOldKeys: secretEncryptionOldKeys
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: tags
    identityId: identity.outputs.id
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    httpAlwaysReadyInstances: 1 + extraAlwaysReadyInstances
  }
}

var appSettings = {
  // Host storage and the app's tables and queues, identity-based (no connection string).
  AzureWebJobsStorage__accountName: storage.outputs.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: storage.outputs.tableEndpoint
  // azure-identity's DefaultAzureCredential picks the user-assigned identity by this client id.
  AZURE_CLIENT_ID: identity.outputs.clientId
  // Telemetry with Entra ID authentication (local authentication is off on the component).
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
  // Where Graph delivers change notifications: the app's own host name.
  PUBLIC_BASE_URL: 'https://${functionApp.outputs.defaultHostName}'
  GRAPH_AUTHORITY_HOST: graphAuthorityHost
  GRAPH_API_BASE: graphApiBase
  SECRET_ENCRYPTION_KEY: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.secretEncryptionKeyUri})'
  SECRET_ENCRYPTION_OLD_KEYS: empty(secretEncryptionOldKeys) ? '' : '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.secretEncryptionOldKeysUri})'
  USER_SYNC_SCHEDULE: userSyncSchedule
  SUBSCRIPTION_RENEWAL_SCHEDULE: subscriptionRenewalSchedule
  RECURRENCE_SCHEDULE: recurrenceSchedule
  BOOKING_SWEEP_SCHEDULE: bookingSweepSchedule
  RECURRENCE_HORIZON_DAYS: string(recurrenceHorizonDays)
  RECURRENCE_MAX_OCCURRENCES: string(recurrenceMaxOccurrences)
  BOOKING_SWEEP_AFTER_SECONDS: string(bookingSweepAfterSeconds)
  USER_SYNC_MAX_DEACTIVATION_SHARE: userSyncMaxDeactivationShare
  LOG_LEVEL: logLevel
}

module settings 'modules/appsettings.bicep' = {
  name: 'appsettings'
  scope: rg
  params: {
    functionAppName: functionApp.outputs.name
    settings: appSettings
  }
  // The identity must hold its roles before the app starts using them.
  dependsOn: [
    storage
    monitoring
    keyVault
  ]
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_APPLICATION_INSIGHTS_NAME string = monitoring.outputs.appInsightsName
output PUBLIC_BASE_URL string = 'https://${functionApp.outputs.defaultHostName}'
