// Kept out of the HTML so the docs page runs under CSP script-src 'self'.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    oauth2RedirectUrl: window.location.origin + "/docs/oauth2-redirect",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
  // The built-in first-party public client: the password flow needs no secret.
  window.ui.initOAuth({ clientId: "userservice-frontend" });
});
