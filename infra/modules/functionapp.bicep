// The Function App on the Flex Consumption plan (Linux). The app settings are applied separately
// by appsettings.bicep, because one of them (PUBLIC_BASE_URL) is derived from the host name that
// only exists once this app does.

param name string
param planName string
param location string
param tags object = {}

@description('azd finds the app to deploy to by this tag.')
param serviceName string = 'api'

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('URL of the blob container that holds the deployment package.')
param deploymentContainerUrl string

@description('Python version of the app (the project targets 3.11).')
param pythonVersion string = '3.11'

@description('Memory of each instance in MB. The measured peak of a 100,000-person first user sync is about 184 MiB per worker; 2048 leaves room for the host and for several syncs at once.')
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound of instances the plan may scale out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Instances of the HTTP group kept warm. One keeps Graph\'s validation handshake and its 3-second notification budget out of reach of cold starts.')
@minValue(1)
param httpAlwaysReadyInstances int = 1

@description('HTTP requests one instance takes at once. The webhook handlers only verify and enqueue, so an instance can take several before the plan scales out (and cold-starts) another.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 8

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
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

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
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
    // Key Vault references resolve with the user-assigned identity (there is no system identity).
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        alwaysReady: [
          {
            name: 'http'
            instanceCount: httpAlwaysReadyInstances
          }
        ]
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
