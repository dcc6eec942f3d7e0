// Render the route the plugin registered for this path, as Stash's router would.
(function () {
  "use strict";
  const page = window.__host.routes[window.location.pathname];
  const root = window.ReactDOM.createRoot(document.getElementById("root"));
  root.render(page ? window.React.createElement(page) : "no plugin route at " + window.location.pathname);
})();
