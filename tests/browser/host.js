// A stand-in for Stash's window.PluginApi (ui/v2.5/src/pluginApi.tsx): the parts the plugin's page uses.
(function () {
  "use strict";
  const routes = {};
  const patches = { before: {}, after: {}, instead: {} };
  function patcher(kind) {
    return function (component, fn) {
      (patches[kind][component] = patches[kind][component] || []).push(fn);
    };
  }
  window.PluginApi = {
    React: window.React,
    ReactDOM: window.ReactDOM,
    GQL: {},
    libraries: {},
    components: {},
    utils: {},
    Event: new EventTarget(),
    register: {
      route: function (path, component) {
        routes[path] = component;
      },
      component: function () {},
    },
    patch: { before: patcher("before"), after: patcher("after"), instead: patcher("instead") },
  };
  window.__host = { routes: routes, patches: patches };
})();
