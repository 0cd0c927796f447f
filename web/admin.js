/* The feedback report page: asks GET /v1/feedback/report with the admin key and shows the
   groups. Every value from the server is set as text (textContent), never as HTML. The key
   stays in this tab only (sessionStorage). */
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = String(text);
    return node;
  };
  const status = (text, error) => {
    $("status").textContent = text;
    $("status").classList.toggle("error", !!error);
  };

  function groupItem(group) {
    const li = el("li", "group");
    const head = el("p");
    head.append(el("span", "count", group.count), el("span", "example", group.example));
    li.append(head);
    const reasons = Object.entries(group.reasons || {}).map(([name, n]) => `${name.replace(/_/g, " ")} ${n}`);
    if (reasons.length) li.append(el("p", "detail", "Reasons: " + reasons.join(", ")));
    for (const q of group.questions || []) li.append(el("p", "detail", "Also asked: " + q));
    for (const c of group.comments || []) li.append(el("p", "detail", "Comment: " + c));
    li.append(el("p", "detail", "Latest: " + group.latest));
    return li;
  }

  function section(title, groups) {
    const part = document.createDocumentFragment();
    const total = groups.reduce((sum, g) => sum + g.count, 0);
    part.append(el("h2", "", `${title}: ${total} in ${groups.length} groups`));
    const list = el("ol", "groups");
    for (const group of groups) list.append(groupItem(group));
    part.append(list);
    return part;
  }

  async function show(event) {
    event.preventDefault();
    const key = $("key").value.trim();
    sessionStorage.setItem("qa-admin-key", key);
    const params = new URLSearchParams();
    if ($("collection").value.trim()) params.set("collection", $("collection").value.trim());
    if ($("since").value.trim()) params.set("since", $("since").value.trim());
    status("Loading…");
    let response;
    try {
      response = await fetch("/v1/feedback/report?" + params, { headers: { Authorization: "Bearer " + key } });
    } catch (err) {
      return status("The server could not be reached.", true);
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const message = data && data.error ? data.error.message : `HTTP ${response.status}`;
      return status(message, true);
    }
    status(`${data.records} records: ${data.helpful} helpful, ${data.not_helpful} not helpful.`);
    const report = $("report");
    report.replaceChildren(
      section("Unanswered (the service abstained)", data.unanswered || []),
      section("Not helpful", data.not_helpful_answers || []),
    );
  }

  $("key").value = sessionStorage.getItem("qa-admin-key") || "";
  $("query").addEventListener("submit", show);
})();
