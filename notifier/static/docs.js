// Starts Swagger UI (served by Notifier itself) on /openapi.json. "Authorize" takes an API key;
// it is kept in this browser's storage across reloads, and sent as "Authorization: Bearer".
"use strict";

window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    displayRequestDuration: true,
    // Only this service's own requests: no validator badge that calls out to a public server.
    validatorUrl: null,
  });
});
