// The console's shared script: small enhancements over pages that work without it.
"use strict";
(function () {
  // A form that asks first (data-confirm="question").
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
})();

// For scripts that change state: the page's CSRF token travels as a header.
window.graamFetch = function (url, options) {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const headers = new Headers((options && options.headers) || {});
  if (meta) headers.set("X-CSRF-Token", meta.content);
  return fetch(url, Object.assign({}, options, { headers: headers, credentials: "same-origin" }));
};
