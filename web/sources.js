/* The chat page's "sources" view, for an admin only: when this tab holds the admin key (signed
   in on /admin), it asks GET /v1/collections/{name}/sources and shows every source of the
   collection, failures first, with the reason. A reader without the key sees nothing. Every
   value from the server is set as text (textContent), never as HTML. */
(() => {
  "use strict";
  const key = sessionStorage.getItem("qa-admin-key");
  if (!key) return;
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = String(text);
    return node;
  };
  const auth = { headers: { Authorization: "Bearer " + key } };

  function item(source) {
    const li = el("li", "qa-source qa-" + source.state);
    li.append(el("span", "qa-state", source.state), el("span", "qa-name", source.source));
    if (source.reason) li.append(el("span", "qa-reason", source.reason));
    else li.append(el("span", "qa-reason", `${source.passages} passages`));
    return li;
  }

  function view(data) {
    const details = el("details", "qa-sources");
    const counts = data.counts || {};
    const parts = ["failed", "skipped", "indexed", "unchanged"].map((s) => `${counts[s] || 0} ${s}`);
    details.append(el("summary", "", `Sources of ${data.collection}: ${parts.join(", ")}`));
    const list = el("ol", "qa-source-list");
    for (const source of data.sources || []) list.append(item(source));  // failures first
    details.append(list);
    if ((counts.failed || 0) > 0) details.classList.add("qa-has-failures");
    return details;
  }

  async function show() {
    try {
      const config = await (await fetch("/v1/config")).json();
      const name = encodeURIComponent(config.collection || "default");
      const response = await fetch(`/v1/collections/${name}/sources`, auth);
      if (!response.ok) return;  // not an admin here (or no such collection): nothing shown
      document.body.classList.add("qa-admin");
      document.body.prepend(view(await response.json()));
    } catch (err) {
      /* the view is an extra: the chat works without it */
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", show);
  else show();
})();
