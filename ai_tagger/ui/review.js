// AI Tagger's review page inside Stash: the review tier's suggestions, accepted or rejected in one
// click, and an "AI" panel on scene and image pages saying what AI Tagger added and why.
// Plain JavaScript on window.PluginApi (its React, Bootstrap and router): no build step, no
// external URL. The Python side answers through runPluginOperation (modes review_list and
// review_decide), sent to Stash's own /graphql with the page's session.
(function () {
  "use strict";

  const api = window.PluginApi;
  if (!api || !api.React) {
    return;
  }
  const React = api.React;
  const h = React.createElement;
  const libraries = api.libraries || {};
  const PLUGIN_ID = "ai_tagger";
  const ROUTE = "/plugin/ai_tagger/review";
  const PER_PAGE = 25;
  const OPERATION =
    "mutation AiTaggerOperation($plugin_id: ID!, $args: Map) " +
    "{ runPluginOperation(plugin_id: $plugin_id, args: $args) }";

  function graphqlUrl() {
    const base = document.querySelector("base");
    return new URL("graphql", base ? base.href : window.location.origin + "/").toString();
  }

  async function operation(args) {
    const response = await fetch(graphqlUrl(), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({
        operationName: "AiTaggerOperation",
        query: OPERATION,
        variables: { plugin_id: PLUGIN_ID, args: args },
      }),
    });
    let body;
    try {
      body = await response.json();
    } catch (e) {
      throw new Error("Stash answered HTTP " + response.status + " without JSON");
    }
    if (body.errors && body.errors.length) {
      throw new Error(body.errors.map((e) => e.message).join("; "));
    }
    return body.data ? body.data.runPluginOperation : null;
  }

  // Stash builds picture URLs from the address the plugin reached it at, which need not be the
  // browser's (a reverse proxy, localhost): keep the path, on the page's own origin and session.
  function samePage(url) {
    try {
      const parsed = new URL(url, window.location.href);
      return parsed.pathname + parsed.search;
    } catch (e) {
      return url;
    }
  }

  function percent(value) {
    return value === null || value === undefined ? "unscored" : Math.round(value * 100) + "%";
  }

  function link(href, props, children) {
    const router = libraries.ReactRouterDOM;
    if (router && router.Link) {
      return h(router.Link, Object.assign({ to: href }, props), children);
    }
    return h("a", Object.assign({ href: href }, props), children);
  }

  function why(tag) {
    const parts = ["score " + percent(tag.score), "confidence " + percent(tag.confidence)];
    if (tag.frames && tag.frames.length) parts.push("frames " + tag.frames.join(", "));
    if (tag.rule) parts.push(tag.rule);
    if (tag.model) parts.push("model " + tag.model);
    if (tag.run) parts.push("run " + tag.run);
    return parts.join(" · ");
  }

  function Chip(props) {
    const tag = props.tag;
    const score = typeof tag.score === "number" ? Math.max(0, Math.min(1, tag.score)) : 0;
    const className =
      "ai-tagger-chip" + (props.applied ? " ai-tagger-chip-applied" : "") + (props.focused ? " ai-tagger-focused" : "");
    return h(
      "div",
      { className: className, title: why(tag), "data-tag": tag.tag, onClick: props.onFocus },
      h("span", { className: "ai-tagger-chip-name" }, tag.tag, tag.tag_id === "new" ? h("em", null, " new") : null),
      h("span", { className: "ai-tagger-score" }, h("span", { className: "ai-tagger-score-bar", style: { width: score * 100 + "%" } })),
      h("span", { className: "ai-tagger-score-text" }, percent(tag.score)),
      props.applied
        ? null
        : h(
            "button",
            { type: "button", className: "btn btn-sm btn-success ai-tagger-accept", disabled: props.busy, onClick: props.onAccept },
            "Accept"
          ),
      h(
        "button",
        { type: "button", className: "btn btn-sm btn-danger ai-tagger-reject", disabled: props.busy, onClick: props.onReject },
        "Reject"
      )
    );
  }

  function Card(props) {
    const item = props.item;
    const decide = props.decide;
    const names = item.suggestions.map((s) => s.tag);
    return h(
      "div",
      {
        className: "ai-tagger-card" + (props.focused ? " ai-tagger-card-focused" : ""),
        "data-kind": item.kind,
        "data-id": item.id,
      },
      link(
        item.url,
        { className: "ai-tagger-thumb" },
        item.thumbnail ? h("img", { src: samePage(item.thumbnail), alt: item.title, loading: "lazy" }) : h("span", null, item.kind)
      ),
      h(
        "div",
        { className: "ai-tagger-body" },
        h("h5", null, link(item.url, null, item.title), h("small", null, " " + item.kind + " " + item.id)),
        // A gallery's suggestions come from its sampled images (frame N is the N-th): show them.
        item.images && item.images.length
          ? h(
              "div",
              { className: "ai-tagger-members" },
              item.images.map((image, index) =>
                link(
                  image.page,
                  { key: image.id, title: "frame " + (index + 1) + ": image " + image.id },
                  h("img", { src: samePage(image.url), alt: "frame " + (index + 1), loading: "lazy" })
                )
              )
            )
          : null,
        h(
          "div",
          { className: "ai-tagger-chips" },
          item.suggestions.map((tag, index) =>
            h(Chip, {
              key: "s" + tag.tag,
              tag: tag,
              busy: props.busy,
              focused: props.focused && props.chip === index,
              onFocus: () => props.onFocus(index),
              onAccept: () => decide(item, [tag.tag], []),
              onReject: () => decide(item, [], [tag.tag]),
            })
          )
        ),
        names.length
          ? h(
              "div",
              { className: "ai-tagger-actions" },
              h("button", { type: "button", className: "btn btn-sm btn-success ai-tagger-accept-all", disabled: props.busy, onClick: () => decide(item, names, []) }, "Accept all"),
              h("button", { type: "button", className: "btn btn-sm btn-danger ai-tagger-reject-all", disabled: props.busy, onClick: () => decide(item, [], names) }, "Reject all")
            )
          : null,
        item.applied.length
          ? h(
              "div",
              { className: "ai-tagger-applied" },
              h("span", { className: "ai-tagger-label" }, "Applied by AI Tagger:"),
              item.applied.map((tag) =>
                h(Chip, { key: "a" + tag.tag_id, tag: tag, applied: true, busy: props.busy, onFocus: () => null, onReject: () => decide(item, [], [tag.tag]) })
              )
            )
          : null
      )
    );
  }

  function EmptyState(props) {
    const settings = (props.data && props.data.settings) || {};
    const review = settings.reviewConfidence;
    return h(
      "div",
      { className: "ai-tagger-empty" },
      h("h4", null, "Nothing to review"),
      h(
        "p",
        null,
        "Suggestions wait here when the model's score for a tag is at least Review confidence " +
          "(reviewConfidence) but below Minimum confidence (minConfidence): they are kept, marked AI_Review, " +
          "and applied only when you accept them."
      ),
      h(
        "p",
        null,
        review === null || review === undefined
          ? "Review confidence is not set, so no suggestion is kept for review. Set it in Settings › Plugins › AI Tagger (for example 30), "
          : "Review confidence is " + review + "%, Minimum confidence " + settings.minConfidence + "%. ",
        "then run “Tag untagged scenes and images”, or “Re-apply tags from cache” to re-decide tagged items without a model call."
      )
    );
  }

  function ReviewPage() {
    const [page, setPage] = React.useState(1);
    const [data, setData] = React.useState(null);
    const [error, setError] = React.useState(null);
    const [notice, setNotice] = React.useState(null);
    const [busy, setBusy] = React.useState(false);
    const [focus, setFocus] = React.useState({ item: 0, chip: 0 });

    const load = React.useCallback(
      (wanted) => {
        setBusy(true);
        return operation({ mode: "review_list", page: wanted, per_page: PER_PAGE })
          .then((answer) => {
            if (answer.items.length === 0 && wanted > 1 && answer.total > 0) {
              setPage(wanted - 1);
              return;
            }
            setData(answer);
            setError(null);
          })
          .catch((e) => setError(e.message))
          .finally(() => setBusy(false));
      },
      []
    );

    React.useEffect(() => {
      load(page);
    }, [page, load]);

    const decide = React.useCallback(
      (item, accept, reject) => {
        setBusy(true);
        return operation({ mode: "review_decide", kind: item.kind, id: item.id, accept: accept, reject: reject })
          .then((answer) => {
            const parts = [];
            if (answer.accepted.length) parts.push("accepted " + answer.accepted.join(", "));
            if (answer.rejected.length) parts.push("rejected " + answer.rejected.join(", "));
            if (answer.already_decided.length) parts.push("already decided: " + answer.already_decided.join(", "));
            setNotice(item.title + ": " + (parts.join("; ") || "nothing changed"));
            return load(page);
          })
          .catch((e) => {
            setError(e.message);
            setBusy(false);
          });
      },
      [page, load]
    );

    const items = data ? data.items : [];
    React.useEffect(() => {
      function onKey(event) {
        const target = event.target;
        if (busy || !items.length || (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
        const item = items[Math.min(focus.item, items.length - 1)];
        const chips = item.suggestions.length;
        if (event.key === "ArrowDown" || event.key === "ArrowUp") {
          const next = Math.max(0, Math.min(items.length - 1, focus.item + (event.key === "ArrowDown" ? 1 : -1)));
          setFocus({ item: next, chip: 0 });
        } else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
          const chip = Math.max(0, Math.min(chips - 1, focus.chip + (event.key === "ArrowRight" ? 1 : -1)));
          setFocus({ item: focus.item, chip: chip });
        } else if ((event.key === "a" || event.key === "r") && chips) {
          const name = item.suggestions[Math.min(focus.chip, chips - 1)].tag;
          decide(item, event.key === "a" ? [name] : [], event.key === "r" ? [name] : []);
        } else {
          return;
        }
        event.preventDefault();
      }
      document.addEventListener("keydown", onKey);
      return () => document.removeEventListener("keydown", onKey);
    }, [items, focus, busy, decide]);

    const pages = data ? Math.max(1, data.pages) : 1;
    return h(
      "div",
      { className: "ai-tagger-review container-fluid" },
      h("h2", null, "AI Tagger review", data ? h("small", null, " " + data.total + " item(s) waiting") : null),
      h("p", { className: "ai-tagger-help" }, "↑/↓ move between items, ←/→ between suggestions, a accepts, r rejects."),
      error ? h("div", { className: "alert alert-danger ai-tagger-error" }, error) : null,
      notice ? h("div", { className: "alert alert-info ai-tagger-notice" }, notice) : null,
      data === null
        ? h("p", { className: "ai-tagger-loading" }, error ? "" : "Loading…")
        : items.length === 0
        ? h(EmptyState, { data: data })
        : items.map((item, index) =>
            h(Card, {
              key: item.kind + item.id,
              item: item,
              busy: busy,
              focused: focus.item === index,
              chip: focus.chip,
              onFocus: (chip) => setFocus({ item: index, chip: chip }),
              decide: decide,
            })
          ),
      pages > 1
        ? h(
            "div",
            { className: "ai-tagger-paging" },
            h("button", { type: "button", className: "btn btn-secondary", disabled: busy || page <= 1, onClick: () => setPage(page - 1) }, "Previous"),
            h("span", null, " Page " + page + " of " + pages + " "),
            h("button", { type: "button", className: "btn btn-secondary", disabled: busy || page >= pages, onClick: () => setPage(page + 1) }, "Next")
          )
        : null
    );
  }

  function AiPanel(props) {
    const [item, setItem] = React.useState(null);
    const [error, setError] = React.useState(null);
    const load = React.useCallback(() => {
      operation({ mode: "review_list", kind: props.kind, id: props.id })
        .then((answer) => setItem(answer.items[0] || null))
        .catch((e) => setError(e.message));
    }, [props.kind, props.id]);
    React.useEffect(load, [load]);
    const reject = (name) =>
      operation({ mode: "review_decide", kind: props.kind, id: props.id, reject: [name] }).then(load, (e) => setError(e.message));
    if (error) return h("div", { className: "ai-tagger-panel alert alert-danger" }, error);
    if (!item) return null;
    const tags = item.applied.concat(item.suggestions.map((s) => Object.assign({ pending: true }, s)));
    return h(
      "div",
      { className: "ai-tagger-panel" },
      h("h6", null, "AI Tagger"),
      tags.length === 0
        ? h("p", null, "AI Tagger added nothing here.")
        : h(
            "ul",
            null,
            tags.map((tag) =>
              h(
                "li",
                { key: tag.tag },
                h("strong", null, tag.tag),
                tag.pending ? h("em", null, " (waiting for review)") : null,
                " — " + why(tag) + " ",
                h("button", { type: "button", className: "btn btn-sm btn-link ai-tagger-reject", onClick: () => reject(tag.tag) }, "Reject")
              )
            )
          ),
      item.suggestions.length ? link(ROUTE, null, "Review suggestions") : null
    );
  }

  // A "before" patch returns the render's arguments: the props with one more child, the rest as given.
  function withChildren(args, extra) {
    const props = args[0];
    const rest = Array.prototype.slice.call(args, 1);
    return [Object.assign({}, props, { children: h(React.Fragment, null, props.children, extra) })].concat(rest);
  }

  api.register.route(ROUTE, ReviewPage);

  if (api.patch) {
    api.patch.before("MainNavBar.UtilityItems", function (props) {
      const entry = link(ROUTE, { key: "ai-tagger-review", className: "nav-link ai-tagger-nav", title: "AI Tagger review" }, "AI review");
      return withChildren(arguments, entry);
    });
    const bootstrap = libraries.Bootstrap;
    if (bootstrap && bootstrap.Nav && bootstrap.Tab) {
      api.patch.before("ScenePage.Tabs", function (props) {
        const tab = h(bootstrap.Nav.Item, { key: "ai-tagger" }, h(bootstrap.Nav.Link, { eventKey: "ai-tagger-panel" }, "AI"));
        return withChildren(arguments, tab);
      });
      api.patch.before("ScenePage.TabContent", function (props) {
        const pane = h(bootstrap.Tab.Pane, { key: "ai-tagger", eventKey: "ai-tagger-panel" }, h(AiPanel, { kind: "scene", id: props.scene.id }));
        return withChildren(arguments, pane);
      });
    }
    api.patch.after("ImageDetailPanel", function () {
      // (props, ...the render's other arguments, its result)
      const props = arguments[0];
      const rendered = arguments[arguments.length - 1];
      return h(React.Fragment, null, rendered, h(AiPanel, { kind: "image", id: props.image.id }));
    });
  }
})();
