// Render what Stash would at this path: the route the plugin registered, or an image's page
// (its details panel, with the plugin's "after" patches applied as Stash's patch.tsx does).
(function () {
  "use strict";
  const React = window.React;
  const host = window.__host;
  const image = /^\/images\/(\d+)$/.exec(window.location.pathname);
  let page = host.routes[window.location.pathname];
  if (image) {
    const ImageDetailPanel = function (props) {
      let rendered = React.createElement("div", { className: "image-details" }, "Image " + props.image.id);
      (host.patches.after.ImageDetailPanel || []).forEach(function (fn) {
        rendered = fn(props, rendered);
      });
      return rendered;
    };
    page = function () {
      return React.createElement(ImageDetailPanel, { image: { id: image[1] } });
    };
  }
  const root = window.ReactDOM.createRoot(document.getElementById("root"));
  root.render(page ? React.createElement(page) : "no plugin route at " + window.location.pathname);
})();
