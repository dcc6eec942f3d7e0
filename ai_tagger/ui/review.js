// AI Tagger's review page inside Stash: the review tier's suggestions, accepted or rejected in one
// click, and an "AI" panel on scene and image pages saying what AI Tagger added and why.
// The page lives at /plugins/ai-tagger: in Stash every path under /plugin/ belongs to the
// plugin-asset router (404 for anything but javascript, css and assets), so a page there loads
// when reached by a click but not on a reload or from a bookmark.
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
  const ROUTE = "/plugins/ai-tagger";
  const PER_PAGE = 25;
  const OPERATION =
    "mutation AiTaggerOperation($plugin_id: ID!, $args: Map) " +
    "{ runPluginOperation(plugin_id: $plugin_id, args: $args) }";

  function baseHref() {
    const base = document.querySelector("base");
    return base ? base.href : window.location.origin + "/";
  }

  function graphqlUrl() {
    return new URL("graphql", baseHref()).toString();
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

  // What a suggestion is called on screen: a tag's or performer's name, else its kind (a description).
  function nameOf(s) {
    return s.tag || s.performer || s.name || (s.kind && s.kind !== "tag" ? s.kind : "") || "";
  }

  // How review_decide takes a suggestion back in accept/reject: a tag by its name, a performer as
  // {kind: "performer", id}; other kinds the same way, as {kind, id}.
  function refOf(s) {
    if (!s.kind || s.kind === "tag") return s.tag;
    const id = s[s.kind + "_id"] || s.id;
    return id === undefined ? { kind: s.kind } : { kind: s.kind, id: String(id) };
  }

  // A performer's picture as Stash serves it (its own placeholder when the performer has none).
  function pictureOf(s) {
    if (s.image || s.image_path) return samePage(s.image || s.image_path);
    return s.kind === "performer" && s.performer_id ? new URL("performer/" + s.performer_id + "/image", baseHref()).pathname : null;
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
    const kind = tag.kind || "tag";
    const name = nameOf(tag);
    const score = typeof tag.score === "number" ? Math.max(0, Math.min(1, tag.score)) : 0;
    const className =
      "ai-tagger-chip ai-tagger-kind-" + kind + (props.applied ? " ai-tagger-chip-applied" : "") + (props.focused ? " ai-tagger-focused" : "");
    const picture = pictureOf(tag);
    return h(
      "div",
      { className: className, title: why(tag), "data-tag": name, "data-kind": kind, onClick: props.onFocus },
      picture ? h("img", { className: "ai-tagger-performer", src: picture, alt: name }) : null,
      kind !== "tag" ? h("span", { className: "ai-tagger-kind badge badge-secondary" }, kind) : null,
      kind === "description"
        ? h("span", { className: "ai-tagger-chip-name ai-tagger-description" }, tag.text || tag.details || tag.description || "")
        : h("span", { className: "ai-tagger-chip-name" }, name, tag.tag_id === "new" ? h("em", null, " new") : null),
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
    const refs = item.suggestions.map(refOf);
    return h(
      "div",
      {
        className: "card ai-tagger-card" + (props.focused ? " ai-tagger-card-focused" : ""),
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
        h("h5", null, link(item.url, null, item.title), h("small", { className: "text-muted" }, " " + item.kind + " " + item.id)),
        h(
          "div",
          { className: "ai-tagger-chips" },
          item.suggestions.map((tag, index) =>
            h(Chip, {
              key: "s" + (tag.kind || "tag") + nameOf(tag),
              tag: tag,
              busy: props.busy,
              focused: props.focused && props.chip === index,
              onFocus: () => props.onFocus(index),
              onAccept: () => decide(item, [refOf(tag)], []),
              onReject: () => decide(item, [], [refOf(tag)]),
            })
          )
        ),
        refs.length
          ? h(
              "div",
              { className: "ai-tagger-actions" },
              h("button", { type: "button", className: "btn btn-sm btn-success ai-tagger-accept-all", disabled: props.busy, onClick: () => decide(item, refs, []) }, "Accept all"),
              h("button", { type: "button", className: "btn btn-sm btn-danger ai-tagger-reject-all", disabled: props.busy, onClick: () => decide(item, [], refs) }, "Reject all")
            )
          : null,
        item.applied.length
          ? h(
              "div",
              { className: "ai-tagger-applied" },
              h("span", { className: "ai-tagger-label" }, "Applied by AI Tagger:"),
              item.applied.map((tag) =>
                h(Chip, { key: "a" + (tag.tag_id || nameOf(tag)), tag: tag, applied: true, busy: props.busy, onFocus: () => null, onReject: () => decide(item, [], [refOf(tag)]) })
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
            const accepted = answer.accepted.concat(answer.performers_accepted || []);
            const rejected = answer.rejected.concat(answer.performers_rejected || []);
            if (accepted.length) parts.push("accepted " + accepted.join(", "));
            if (rejected.length) parts.push("rejected " + rejected.join(", "));
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
          const ref = refOf(item.suggestions[Math.min(focus.chip, chips - 1)]);
          decide(item, event.key === "a" ? [ref] : [], event.key === "r" ? [ref] : []);
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
      error
        ? h(
            "div",
            { className: "alert alert-danger ai-tagger-error" },
            "AI Tagger could not answer: " + error + " ",
            h("button", { type: "button", className: "btn btn-sm btn-secondary ai-tagger-retry", disabled: busy, onClick: () => load(page) }, "Try again")
          )
        : null,
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

  // The "AI" tab of a scene and the AI section of an image: what AI Tagger applied (Reject takes it
  // off for good) and what waits for review (Accept or Reject, as on the review page).
  function AiPanel(props) {
    const [item, setItem] = React.useState(null);
    const [error, setError] = React.useState(null);
    const [busy, setBusy] = React.useState(false);
    const load = React.useCallback(() => {
      setBusy(true);
      return operation({ mode: "review_list", kind: props.kind, id: props.id })
        .then((answer) => {
          setItem(answer.items[0] || { applied: [], suggestions: [] });
          setError(null);
        })
        .catch((e) => setError(e.message))
        .finally(() => setBusy(false));
    }, [props.kind, props.id]);
    React.useEffect(() => {
      load();
    }, [load]);
    const decide = (accept, reject) => {
      setBusy(true);
      return operation({ mode: "review_decide", kind: props.kind, id: props.id, accept: accept, reject: reject }).then(load, (e) => {
        setError(e.message);
        setBusy(false);
      });
    };
    const row = (tag, pending) =>
      h(
        "li",
        { key: (pending ? "s" : "a") + (tag.kind || "tag") + nameOf(tag), className: "ai-tagger-panel-item", "data-tag": nameOf(tag), "data-kind": tag.kind || "tag" },
        pictureOf(tag) ? h("img", { className: "ai-tagger-performer", src: pictureOf(tag), alt: nameOf(tag) }) : null,
        h("strong", null, nameOf(tag)),
        tag.kind && tag.kind !== "tag" && tag.kind !== nameOf(tag) ? h("span", { className: "badge badge-secondary ai-tagger-kind" }, tag.kind) : null,
        tag.text ? h("div", { className: "ai-tagger-description" }, tag.text) : null,
        " ",
        h("span", { className: "badge " + (pending ? "badge-warning" : "badge-info") }, pending ? "waiting for review" : "applied"),
        h("div", { className: "ai-tagger-why text-muted" }, why(tag)),
        pending
          ? h("button", { type: "button", className: "btn btn-sm btn-success ai-tagger-accept", disabled: busy, onClick: () => decide([refOf(tag)], []) }, "Accept")
          : null,
        h("button", { type: "button", className: "btn btn-sm btn-danger ai-tagger-reject", disabled: busy, onClick: () => decide([], [refOf(tag)]) }, "Reject")
      );
    let body;
    if (error) {
      body = h("div", { className: "alert alert-danger ai-tagger-error" }, "AI Tagger could not answer: " + error);
    } else if (!item) {
      body = h("p", { className: "ai-tagger-loading" }, "Loading…");
    } else if (!item.applied.length && !item.suggestions.length) {
      body = h("p", { className: "ai-tagger-nothing" }, "AI Tagger added nothing here and has nothing waiting for review.");
    } else {
      body = h(
        React.Fragment,
        null,
        item.suggestions.length ? h("h6", null, "Waiting for review") : null,
        item.suggestions.length ? h("ul", { className: "ai-tagger-pending" }, item.suggestions.map((s) => row(s, true))) : null,
        item.applied.length ? h("h6", null, "Applied by AI Tagger") : null,
        item.applied.length ? h("ul", { className: "ai-tagger-applied-list" }, item.applied.map((s) => row(s, false))) : null,
        item.suggestions.length ? link(ROUTE, { className: "ai-tagger-review-link" }, "Open the review page") : null
      );
    }
    return h("div", { className: "ai-tagger-panel", "data-kind": props.kind, "data-id": props.id }, h("h5", null, "AI Tagger"), body);
  }

  // A "before" patch returns the render's arguments: the props with one more child, the rest as given.
  function withChildren(args, extra) {
    const props = args[0];
    const rest = Array.prototype.slice.call(args, 1);
    return [Object.assign({}, props, { children: h(React.Fragment, null, props.children, extra) })].concat(rest);
  }

  function NavEntry() {
    const router = libraries.ReactRouterDOM;
    const bootstrap = libraries.Bootstrap;
    const Icon = api.components && api.components.Icon;
    const solid = libraries.FontAwesomeSolid;
    const content = [
      Icon && solid ? h(Icon, { key: "icon", icon: solid.faWandMagicSparkles || solid.faTags }) : null,
      h("span", { key: "label", className: "d-none d-sm-inline ai-tagger-nav-label" }, "AI review"),
    ];
    const button = bootstrap
      ? h(bootstrap.Button, { className: "minimal d-flex align-items-center h-100", title: "AI Tagger review" }, content)
      : h("span", null, content);
    if (router && router.NavLink) {
      return h(router.NavLink, { className: "nav-utility ai-tagger-nav", exact: true, to: ROUTE }, button);
    }
    return h("a", { className: "nav-utility ai-tagger-nav", href: ROUTE }, button);
  }

  api.register.route(ROUTE, ReviewPage);

  if (api.patch) {
    // Built like Stash's own Statistics entry (a NavLink around a minimal Button), so it lines up.
    api.patch.before("MainNavBar.UtilityItems", function (props) {
      return withChildren(arguments, h(NavEntry, { key: "ai-tagger-review" }));
    });
    const bootstrap = libraries.Bootstrap;
    if (bootstrap && bootstrap.Nav && bootstrap.Tab) {
      api.patch.before("ScenePage.Tabs", function (props) {
        const tab = h(bootstrap.Nav.Item, { key: "ai-tagger" }, h(bootstrap.Nav.Link, { eventKey: "ai-tagger-panel", className: "ai-tagger-tab" }, "AI"));
        return withChildren(arguments, tab);
      });
      api.patch.before("ScenePage.TabContent", function (props) {
        // mountOnEnter: the plugin is asked (one process start) only when the tab is opened.
        const pane = h(bootstrap.Tab.Pane, { key: "ai-tagger", eventKey: "ai-tagger-panel", mountOnEnter: true }, h(AiPanel, { kind: "scene", id: props.scene.id }));
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
