// Starts Swagger UI on /api/v1/swagger from a file, not an inline script, so the CSP needs no exception.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: new URL(root.dataset.url, window.location.href).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    // Not the standalone layout: its top bar (a box to open other documents, and a logo drawn with an
    // inline <style> that the CSP refuses) has nothing to offer for one API.
    layout: "BaseLayout",
    validatorUrl: null,  // the public validator badge would load an image from another site
    showExtensions: true,
    showCommonExtensions: true,
  });
});
