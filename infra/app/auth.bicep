// App Service Authentication (Easy Auth) in front of the function app, with the sign-in app
// registration as the Entra ID provider.
//
// Every route requires a signed-in user except the anonymous routes (anonymous-paths.json):
// Microsoft Graph and Dime.Scheduler cannot sign in, so their webhooks are validated by the code
// itself (Graph clientState, the Dime.Scheduler shared secret), and /api/health must answer probes.
//
// unauthenticatedClientAction is RedirectToLoginPage: the protected routes are the settings page
// and the admin monitor (/api/ui/...), opened in a browser, where a redirect to sign-in is what a
// person expects. The JSON routes they call (/api/settings/..., /api/admin/...) are same-origin
// fetches from those pages, which already carry the session cookie; a fetch that sends
// `X-Requested-With: XMLHttpRequest` gets 401 instead of a redirect when the session has expired,
// so the page can reload itself into the sign-in flow.
//
// No client secret: the sign-in app issues ID tokens (implicit id_token + form_post), which is all
// Easy Auth needs to establish a session; the app reads the user and the `roles` claim from the
// X-MS-CLIENT-PRINCIPAL header Easy Auth injects (external callers cannot set it).

@description('Name of the function app.')
param functionAppName string

@description('Client (application) id of the sign-in app registration.')
param clientId string

@description('Entra ID tenant users sign in to.')
param tenantId string

// Exactly the routes that must be reachable without sign-in. One source, anonymous-paths.json beside
// this file: the dev host's Easy Auth stand-in enforces the same list locally (tests/infra and
// tests/devhost check both against it).
var anonymousPaths = loadJsonContent('anonymous-paths.json').paths

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  //checkov:skip=CKV_AZURE_13: False positive: checkov evaluates this sites/config child as if it were a site; this resource is the authentication configuration itself.
  //checkov:skip=CKV_AZURE_63: False positive (sites/config child evaluated as a site); HTTP logs of Flex Consumption go to Application Insights, not App Service file logging.
  //checkov:skip=CKV_AZURE_65: False positive (sites/config child evaluated as a site); detailed error pages are an App Service file-logging feature Flex Consumption does not have.
  //checkov:skip=CKV_AZURE_66: False positive (sites/config child evaluated as a site); failed request tracing is an App Service file-logging feature Flex Consumption does not have.
  //checkov:skip=CKV_AZURE_80: False positive (sites/config child evaluated as a site); this is a Python app, no .NET Framework.
  //checkov:skip=CKV_AZURE_88: False positive (sites/config child evaluated as a site); Flex Consumption has no Azure Files content share, by design.
  //checkov:skip=CKV_AZURE_222: False positive (sites/config child evaluated as a site); public access is decided on the site (see there).
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
      runtimeVersion: '~1'
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: anonymousPaths
    }
    httpSettings: {
      requireHttps: true
      routes: {
        apiPrefix: '/.auth'
      }
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0'
          clientId: clientId
        }
        validation: {
          allowedAudiences: [
            clientId
            'api://${clientId}'
          ]
        }
        login: {
          disableWWWAuthenticate: false
        }
      }
    }
    login: {
      // The token store needs a file share or a SAS URL; Flex has no share and shared keys are
      // off. The session cookie and the injected principal headers work without it.
      tokenStore: {
        enabled: false
      }
      preserveUrlFragmentsForLogins: true
    }
  }
}

output anonymousPaths array = anonymousPaths
