// Applies the app settings to an existing Function App. The whole collection is replaced: a
// setting missing from `settings` is removed, so main.bicep lists every one.

param functionAppName string

@description('Every app setting, by name. Values may be Key Vault references.')
param settings object

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: settings
}
