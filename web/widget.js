/*!
 * qa chat widget: ask questions about your documents, with exact citations.
 *
 * Embed on any page (one script tag, no build step):
 *
 *   <script src="https://HOST/widget.js" data-endpoint="https://HOST"
 *           data-title="Ask the docs" defer></script>
 *
 * Script attributes (all optional):
 *   data-endpoint    base URL of the qa service (default: the origin this script came from)
 *   data-title       heading of the panel (default: the service's configured title)
 *   data-collection  collection to ask (default: the service's default collection)
 *   data-starters    starter questions: a JSON array or "|"-separated text (default: the service's)
 *   data-open        "true" opens the panel when the page loads
 *   data-mode        "launcher" (default: a button bottom-right that opens a panel) or "page" (full page)
 *   data-top-k       passages per answer, 1-50 (default 5)
 *   data-theme       "auto" (default: follows prefers-color-scheme), "light" or "dark"
 *   data-auto        "false": only define the element, don't add one to the page
 *   data-key         an API key (QA_AUTH=keys), sent as "Authorization: Bearer KEY": give a
 *                    read key restricted to this site's origin, collections and a rate
 *                    (`qa keys create --scope read --origins https://SITE ...`); it is public
 *
 * Or place the element yourself (then the script adds none); the attributes are the same without
 * "data-", except data-title, which is "heading":
 *
 *   <qa-docs-chat mode="page" endpoint="https://HOST" heading="Ask the docs"></qa-docs-chat>
 *
 * Everything the service returns is rendered as text (text nodes / textContent), never as HTML.
 */
(() => {
  "use strict";

  const SCRIPT = document.currentScript;
  const SCRIPT_URL = SCRIPT && SCRIPT.src ? new URL(SCRIPT.src, document.baseURI) : null;
  const DEFAULT_ENDPOINT = SCRIPT_URL ? SCRIPT_URL.origin : location.origin;
  const BASE_NAME = "qa-docs-chat";
  const BRAND = Symbol.for("qa-docs-chat.widget");

  const REQUEST_TIMEOUT_MS = 60000;
  const HISTORY_MESSAGES = 10; // at most this many earlier messages go with a question...
  const HISTORY_CHARS = 1200; // ...each trimmed to this many characters
  const VISIBLE_CARDS = 3; // passages shown before "Show more"
  const STORED_MESSAGES = 40;

  // ------------------------------------------------------------------ icons (constant markup)
  const svg = (body, extra = "") =>
    `<svg viewBox="0 0 24 24" width="20" height="20" fill="none" stroke="currentColor" stroke-width="2" ` +
    `stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false" ${extra}>${body}</svg>`;
  const ICON = {
    chat: svg('<path d="M21 11.5a8.4 8.4 0 0 1-12.3 7.5L3 21l2-5.2A8.4 8.4 0 1 1 21 11.5z"/><path d="M8.5 10h7M8.5 13.5h4.5"/>'),
    close: svg('<path d="M18 6 6 18M6 6l12 12"/>'),
    send: svg('<path d="M12 19V5M5.5 11.5 12 5l6.5 6.5"/>'),
    clear: svg('<path d="M4 7h16M9.5 7V4.5h5V7M6.5 7l1 12.5h9l1-12.5"/>'),
    book: svg('<path d="M3 5.5h5.5A3.5 3.5 0 0 1 12 9v11a2.8 2.8 0 0 0-2.8-2.8H3z"/><path d="M21 5.5h-5.5A3.5 3.5 0 0 0 12 9v11a2.8 2.8 0 0 1 2.8-2.8H21z"/>'),
    doc: svg('<path d="M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8z"/><path d="M14 3v5h5M9 13h6M9 17h4"/>', 'width="16" height="16"'),
    expand: svg('<path d="M4 9h16M4 15h16M9 4.5 12 2l3 2.5M9 19.5l3 2.5 3-2.5"/>', 'width="16" height="16"'),
    alert: svg('<circle cx="12" cy="12" r="9"/><path d="M12 7.5v5.5M12 16.5v.01"/>'),
    info: svg('<circle cx="12" cy="12" r="9"/><path d="M12 11v5.5M12 7.5v.01"/>'),
    up: svg('<path d="M7 10v10H4V10zM7 10l4-7a2.5 2.5 0 0 1 3 2.8L13.5 9H19a2 2 0 0 1 2 2.3l-1.2 7A2 2 0 0 1 17.8 20H7"/>', 'width="16" height="16"'),
    down: svg('<path d="M17 14V4h3v10zM17 14l-4 7a2.5 2.5 0 0 1-3-2.8l.5-3.2H5a2 2 0 0 1-2-2.3l1.2-7A2 2 0 0 1 6.2 4H17"/>', 'width="16" height="16"'),
    retry: svg('<path d="M20 12a8 8 0 1 1-2.4-5.7L20 8.5"/><path d="M20 3.5v5h-5"/>', 'width="16" height="16"'),
  };

  // ------------------------------------------------------------------ styles (inside the shadow root)
  const CSS = `
:host { all: initial; display: block; }
:host([hidden]) { display: none; }
[hidden] { display: none !important; }
*, *::before, *::after { box-sizing: border-box; }

.root {
  --bg: #ffffff; --surface: #ffffff; --surface-2: #f2f4f7; --border: #e2e5eb; --border-strong: #cfd4dc;
  --text: #1a1d23; --muted: #586174; --accent: #3552c8; --accent-hover: #2a44ad; --on-accent: #ffffff;
  --accent-soft: #eef2ff; --ring: rgba(53, 82, 200, .28);
  --mark-answer: #ffe17a; --mark-answer-text: #1a1d23; --mark-hl: #dde5ff; --mark-cite: #fff3c4;
  --danger: #b42318; --danger-soft: #fff1f0; --danger-border: #f6c8c3;
  --shadow: 0 18px 50px rgba(16, 24, 40, .18), 0 2px 8px rgba(16, 24, 40, .08);
  --radius: 16px;
  color-scheme: light;
  font: 400 15px/1.55 ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
        "Noto Sans", "Liberation Sans", Arial, sans-serif;
  color: var(--text);
  text-align: left; letter-spacing: normal; text-transform: none; word-spacing: normal;
  -webkit-font-smoothing: antialiased;
}
.root[data-theme="dark"] {
  --bg: #15171c; --surface: #1c1f26; --surface-2: #262a33; --border: #2f3440; --border-strong: #424958;
  --text: #e7e9ee; --muted: #a3acbb; --accent: #93a8ff; --accent-hover: #b0c0ff; --on-accent: #0f1424;
  --accent-soft: #222a45; --ring: rgba(147, 168, 255, .35);
  --mark-answer: #6a5310; --mark-answer-text: #fff6d6; --mark-hl: #2d3a68; --mark-cite: #3a3318;
  --danger: #ff9b94; --danger-soft: #3b1e20; --danger-border: #5e2c2f;
  --shadow: 0 18px 50px rgba(0, 0, 0, .5), 0 2px 8px rgba(0, 0, 0, .4);
  color-scheme: dark;
}

button, textarea { font: inherit; color: inherit; letter-spacing: inherit; }
button { cursor: pointer; border: 0; background: none; padding: 0; margin: 0; }
button:disabled { cursor: default; }
:focus { outline: none; }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
h2, h3, h4, h5, p, ol, ul, li { margin: 0; padding: 0; font: inherit; }
ol, ul { list-style: none; }
svg { flex: none; display: block; }
.sr-only {
  position: absolute !important; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}

/* ---------------------------------------------------------------- launcher */
.launcher {
  position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;
  width: 56px; height: 56px; border-radius: 50%;
  display: grid; place-items: center;
  background: var(--accent); color: var(--on-accent);
  box-shadow: 0 8px 24px rgba(16, 24, 40, .25), 0 1px 3px rgba(16, 24, 40, .2);
  transition: transform .15s ease, background-color .15s ease;
}
.launcher:hover { background: var(--accent-hover); transform: translateY(-1px); }
.launcher svg { width: 26px; height: 26px; }
.launcher .i-close { display: none; }
.launcher[aria-expanded="true"] .i-chat { display: none; }
.launcher[aria-expanded="true"] .i-close { display: block; }
.root[data-mode="page"] .launcher { display: none; }

/* ---------------------------------------------------------------- panel */
.panel {
  display: flex; flex-direction: column; overflow: hidden;
  background: var(--bg); color: var(--text);
}
.root[data-mode="launcher"] .panel {
  position: fixed; z-index: 2147483001; right: 20px; bottom: 88px;
  width: min(420px, calc(100vw - 40px)); height: min(680px, calc(100vh - 112px));
  border: 1px solid var(--border); border-radius: var(--radius); box-shadow: var(--shadow);
  transform-origin: bottom right;
}
.root[data-mode="launcher"] .panel:not([hidden]) { animation: pop .18s cubic-bezier(.2, .8, .3, 1); }
@keyframes pop { from { opacity: 0; transform: translateY(8px) scale(.98); } }
.root[data-mode="page"] { height: 100%; }
.root[data-mode="page"] .panel { height: 100%; min-height: 100%; }

@media (max-width: 520px), (max-height: 520px) {
  .root[data-mode="launcher"] .panel {
    inset: 0; right: 0; bottom: 0; width: 100%; height: 100%; max-height: 100dvh;
    border: 0; border-radius: 0;
  }
  .root[data-mode="launcher"][data-open="true"] .launcher { display: none; }
}
@media (prefers-reduced-motion: reduce) {
  .root *, .root *::before, .root *::after { animation: none !important; transition: none !important; }
}

/* ---------------------------------------------------------------- header */
.bar {
  flex: none; display: flex; align-items: center; gap: 8px;
  padding: 12px 12px 12px 16px; border-bottom: 1px solid var(--border); background: var(--bg);
}
.root[data-mode="page"] .bar { padding: 14px max(16px, calc((100% - 780px) / 2)); }
.brand { flex: 1; min-width: 0; display: flex; align-items: center; gap: 10px; }
.logo {
  flex: none; width: 32px; height: 32px; border-radius: 9px; display: grid; place-items: center;
  background: var(--accent-soft); color: var(--accent);
}
.logo svg { width: 19px; height: 19px; }
.heading {
  font-size: 16px; font-weight: 650; line-height: 1.3; letter-spacing: -.01em;
  overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
}
.ghost {
  display: inline-flex; align-items: center; gap: 6px; height: 34px; padding: 0 10px; border-radius: 9px;
  color: var(--muted); font-size: 14px; font-weight: 500;
}
.ghost svg { width: 17px; height: 17px; }
.ghost:hover:not(:disabled) { background: var(--surface-2); color: var(--text); }
.ghost:disabled { opacity: .45; }
.icon-btn {
  width: 34px; height: 34px; border-radius: 9px; display: grid; place-items: center; color: var(--muted);
}
.icon-btn:hover { background: var(--surface-2); color: var(--text); }
.root[data-mode="page"] .close { display: none; }

/* ---------------------------------------------------------------- conversation */
.scroller { flex: 1; min-height: 0; overflow-y: auto; overflow-x: hidden; overscroll-behavior: contain; }
.inner { padding: 18px 16px 8px; }
.root[data-mode="page"] .inner { max-width: 812px; margin: 0 auto; padding: 28px 16px 12px; }

.empty { padding: 14px 4px 8px; }
.root[data-mode="page"] .empty { padding-top: 8vh; text-align: center; }
.empty-mark {
  width: 44px; height: 44px; border-radius: 13px; display: grid; place-items: center; margin-bottom: 14px;
  background: var(--accent-soft); color: var(--accent);
}
.root[data-mode="page"] .empty-mark { margin: 0 auto 16px; width: 52px; height: 52px; }
.empty-mark svg { width: 24px; height: 24px; }
.empty-title { font-size: 19px; font-weight: 650; letter-spacing: -.015em; line-height: 1.3; }
.root[data-mode="page"] .empty-title { font-size: 26px; }
.empty-text { margin-top: 6px; color: var(--muted); }
.starters-label { margin-top: 20px; font-size: 12.5px; font-weight: 600; color: var(--muted); text-transform: uppercase; letter-spacing: .06em; }
.starters { display: flex; flex-direction: column; gap: 8px; margin-top: 10px; }
.root[data-mode="page"] .starters { flex-direction: row; flex-wrap: wrap; justify-content: center; max-width: 680px; margin: 12px auto 0; }
.chip {
  text-align: left; padding: 9px 14px; border-radius: 12px; border: 1px solid var(--border);
  background: var(--surface); color: var(--text); font-size: 14px; line-height: 1.4;
  transition: border-color .15s ease, background-color .15s ease;
}
.chip:hover { border-color: var(--accent); background: var(--accent-soft); }

.messages { display: flex; flex-direction: column; gap: 18px; }
.msg { display: flex; flex-direction: column; min-width: 0; }
.msg.user { align-items: flex-end; }
.bubble { max-width: 88%; padding: 10px 14px; border-radius: 18px; overflow-wrap: anywhere; white-space: pre-wrap; }
.user .bubble { background: var(--accent); color: var(--on-accent); border-bottom-right-radius: 6px; }
.user.failed .bubble { opacity: .75; }
.bot .bubble { max-width: 100%; background: var(--surface-2); border-bottom-left-radius: 6px; }
.answer-text { font-size: 15.5px; }
.cites { white-space: nowrap; }
.cite {
  display: inline-grid; place-items: center; min-width: 20px; height: 20px; padding: 0 5px; margin-left: 4px;
  vertical-align: 1px; border-radius: 6px; font-size: 12px; font-weight: 650; line-height: 1;
  background: var(--accent-soft); color: var(--accent); border: 1px solid transparent;
}
.cite:hover { border-color: var(--accent); }
.notice { display: flex; gap: 10px; align-items: flex-start; }
.notice svg { color: var(--muted); margin-top: 1px; }
.thinking .bubble { display: inline-flex; align-items: center; gap: 10px; color: var(--muted); max-width: max-content; }
.dots { display: inline-flex; gap: 4px; }
.dots i { width: 6px; height: 6px; border-radius: 50%; background: currentColor; animation: blink 1.2s infinite ease-in-out; }
.dots i:nth-child(2) { animation-delay: .15s; }
.dots i:nth-child(3) { animation-delay: .3s; }
@keyframes blink { 0%, 80%, 100% { opacity: .25; transform: translateY(0); } 40% { opacity: 1; transform: translateY(-2px); } }

.sources { margin-top: 12px; }
.sources-label { font-size: 12.5px; font-weight: 600; color: var(--muted); text-transform: uppercase; letter-spacing: .06em; margin: 0 0 8px 2px; }
.cards { display: flex; flex-direction: column; gap: 10px; }
.card {
  border: 1px solid var(--border); border-radius: 14px; background: var(--surface); padding: 12px 14px;
  transition: border-color .2s ease, box-shadow .2s ease; min-width: 0;
}
.card.is-answer { border-color: var(--border-strong); }
.card.flash { border-color: var(--accent); box-shadow: 0 0 0 3px var(--ring); }
.card-head { display: flex; gap: 10px; align-items: flex-start; }
.num {
  flex: none; min-width: 22px; height: 22px; padding: 0 5px; border-radius: 7px; display: grid; place-items: center;
  font-size: 12px; font-weight: 700; background: var(--surface-2); color: var(--muted); margin-top: 1px;
}
.is-answer .num { background: var(--accent-soft); color: var(--accent); }
.card-titles { flex: 1; min-width: 0; }
.card-title { font-size: 14px; font-weight: 600; line-height: 1.4; overflow-wrap: anywhere; }
.card-meta { font-size: 12.5px; color: var(--muted); margin-top: 1px; overflow-wrap: anywhere; }
.passage, .ctx p { font-size: 14px; line-height: 1.6; white-space: pre-wrap; overflow-wrap: anywhere; }
.card-body { margin-top: 8px; }
.ctx p { color: var(--muted); }
.ctx-before p { margin-bottom: 8px; }
.ctx-after p { margin-top: 8px; }
mark { color: inherit; background: none; border-radius: 3px; padding: 0 1px; -webkit-box-decoration-break: clone; box-decoration-break: clone; }
mark.hl { background: var(--mark-hl); }
mark.ans { background: var(--mark-answer); color: var(--mark-answer-text); }
mark.cited { background: var(--mark-cite); padding: 2px 0; scroll-margin: 40px; }
.card-actions { display: flex; flex-wrap: wrap; gap: 4px 6px; margin: 8px -8px -4px; }
.link-btn {
  display: inline-flex; align-items: center; gap: 6px; padding: 5px 8px; border-radius: 8px;
  font-size: 13px; font-weight: 550; color: var(--accent);
}
.link-btn svg { width: 16px; height: 16px; }
a.link-btn { text-decoration: none; }
.link-btn:hover:not(:disabled) { background: var(--accent-soft); }
.link-btn[aria-busy="true"] { opacity: .7; cursor: progress; }
.card-error { margin-top: 6px; font-size: 13px; color: var(--danger); }
.more-cards { margin-top: 8px; }

/* feedback under each answer */
.feedback { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 6px; margin-top: 10px; font-size: 13px; color: var(--muted); }
.root[data-feedback="off"] .feedback, .root[data-feedback="off"] .fb-form { display: none; }
.fb-label { margin-right: 2px; }
.fb-btn {
  display: inline-flex; align-items: center; gap: 5px; height: 28px; padding: 0 9px; border-radius: 8px;
  border: 1px solid var(--border); background: var(--surface); color: var(--text); font-size: 13px;
}
.fb-btn:hover:not(:disabled) { border-color: var(--accent); }
.fb-btn[aria-pressed="true"] { border-color: var(--accent); background: var(--accent-soft); color: var(--accent); }
.fb-btn:disabled:not([aria-pressed="true"]) { opacity: .5; }
.fb-form { margin-top: 8px; padding: 10px 12px; border: 1px solid var(--border); border-radius: 12px; background: var(--surface); font-size: 14px; }
.fb-form fieldset { border: 0; margin: 0; padding: 0; }
.fb-form legend { font-weight: 600; margin-bottom: 4px; padding: 0; }
.fb-reasons { display: flex; flex-wrap: wrap; gap: 2px 14px; }
.fb-reasons label { display: inline-flex; align-items: center; gap: 6px; cursor: pointer; }
.fb-form textarea {
  display: block; width: 100%; margin-top: 8px; min-height: 56px; max-height: 160px; padding: 6px 8px; resize: vertical;
  border: 1px solid var(--border-strong); border-radius: 8px; background: var(--bg); font-size: 14px; color: var(--text);
}
.fb-form textarea:focus-visible { outline: 2px solid var(--accent); outline-offset: 1px; }
.fb-actions { display: flex; gap: 8px; margin-top: 8px; }
.fb-send { height: 30px; padding: 0 12px; border-radius: 8px; background: var(--accent); color: var(--on-accent); font-size: 13px; font-weight: 600; }
.fb-cancel { height: 30px; padding: 0 10px; border-radius: 8px; color: var(--muted); font-size: 13px; }
.fb-status { font-size: 13px; color: var(--muted); }
.fb-status.error { color: var(--danger); }

.error-box {
  display: flex; gap: 10px; align-items: flex-start; padding: 12px 14px; border-radius: 14px;
  background: var(--danger-soft); border: 1px solid var(--danger-border);
}
.error-box > svg { color: var(--danger); margin-top: 1px; }
.error-main { flex: 1; min-width: 0; }
.error-title { font-weight: 600; }
.error-detail { font-size: 14px; color: var(--text); opacity: .85; margin-top: 2px; overflow-wrap: anywhere; }
.retry {
  display: inline-flex; align-items: center; gap: 6px; margin-top: 10px; height: 32px; padding: 0 12px; border-radius: 9px;
  background: var(--surface); border: 1px solid var(--border-strong); font-size: 14px; font-weight: 550;
}
.retry:hover { border-color: var(--danger); }

/* ---------------------------------------------------------------- generated answers (streamed) */
.streaming .bubble { color: var(--text); max-width: 100%; white-space: pre-wrap; }
.streaming .caret { display: inline-block; width: 7px; height: 1em; margin-left: 2px; vertical-align: -2px; background: var(--muted); animation: blink 1s infinite; }
.retracted { color: var(--muted); text-decoration: line-through; text-decoration-thickness: 1.5px; }
.gen-notice { margin-top: 8px; font-size: 13px; color: var(--muted); white-space: normal; }

/* ---------------------------------------------------------------- composer */
.composer { flex: none; padding: 10px 12px 12px; background: var(--bg); border-top: 1px solid var(--border); }
.root[data-mode="page"] .composer { border-top: 0; padding: 8px max(16px, calc((100% - 780px) / 2)) 18px; }
.field {
  display: flex; align-items: flex-end; gap: 8px; padding: 6px 6px 6px 4px;
  border: 1px solid var(--border-strong); border-radius: 14px; background: var(--surface);
  transition: border-color .15s ease, box-shadow .15s ease;
}
.field:focus-within { border-color: var(--accent); box-shadow: 0 0 0 3px var(--ring); }
textarea {
  flex: 1; min-width: 0; resize: none; border: 0; background: transparent; outline: none;
  padding: 6px 8px; min-height: 34px; max-height: 168px; line-height: 1.45; font-size: 15px; color: var(--text);
}
textarea::placeholder { color: var(--muted); opacity: 1; }
textarea:focus-visible { outline: none; }
.send {
  flex: none; width: 34px; height: 34px; border-radius: 10px; display: grid; place-items: center;
  background: var(--accent); color: var(--on-accent); transition: background-color .15s ease, opacity .15s ease;
}
.send:hover:not(:disabled) { background: var(--accent-hover); }
.send:disabled { opacity: .4; }
.hint { margin: 6px 4px 0; font-size: 12px; color: var(--muted); display: flex; justify-content: space-between; gap: 8px; }
.count.over { color: var(--danger); font-weight: 600; }

/* ---------------------------------------------------------------- document viewer */
.doc {
  width: min(760px, calc(100vw - 32px)); max-width: none; max-height: min(86vh, 900px); padding: 0;
  border: 1px solid var(--border); border-radius: var(--radius); box-shadow: var(--shadow);
  background: var(--bg); color: var(--text); overflow: hidden;
}
.doc[open] { display: flex; flex-direction: column; }
.doc::backdrop { background: rgba(12, 15, 22, .55); }
.doc-head { flex: none; display: flex; gap: 12px; align-items: flex-start; padding: 16px 16px 12px 20px; border-bottom: 1px solid var(--border); }
.doc-titles { flex: 1; min-width: 0; }
.doc-title { font-size: 17px; font-weight: 650; line-height: 1.35; overflow-wrap: anywhere; }
.doc-meta { font-size: 13px; color: var(--muted); margin-top: 2px; overflow-wrap: anywhere; }
.doc-links { display: flex; flex-wrap: wrap; gap: 4px 14px; margin-top: 4px; font-size: 13px; }
.doc-links a { color: var(--accent); font-weight: 550; }
.doc-links a:empty { display: none; }
.doc-body { flex: 1; min-height: 0; overflow-y: auto; padding: 18px 20px 24px; }
.doc-text { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 15px; line-height: 1.7; max-width: 68ch; }
.doc-status { color: var(--muted); }
.doc-status.error { color: var(--danger); }
@media (max-width: 520px) {
  .doc { width: 100vw; max-height: 100dvh; height: 100dvh; border-radius: 0; border: 0; }
  .doc-body { padding: 14px 16px 20px; }
}
`;

  // ------------------------------------------------------------------ markup (constant; data is added as text)
  const TEMPLATE = `
<div class="root" part="root">
  <button class="launcher" type="button" aria-expanded="false" aria-controls="panel">
    <span class="i-chat">${ICON.chat}</span><span class="i-close">${ICON.close}</span>
    <span class="sr-only launcher-label">Open chat</span>
  </button>
  <section class="panel" id="panel" aria-labelledby="heading">
    <header class="bar">
      <div class="brand"><span class="logo" aria-hidden="true">${ICON.book}</span><h2 class="heading" id="heading">Ask the documents</h2></div>
      <button class="ghost clear" type="button" disabled>${ICON.clear}<span>Clear<span class="sr-only"> conversation</span></span></button>
      <button class="icon-btn close" type="button" aria-label="Close chat">${ICON.close}</button>
    </header>
    <div class="scroller" role="region" aria-label="Conversation" tabindex="0">
      <div class="inner">
        <div class="empty">
          <div class="empty-mark" aria-hidden="true">${ICON.book}</div>
          <h3 class="empty-title">Ask a question</h3>
          <p class="empty-text">Answers are quoted from the documents, with links to the exact passages.</p>
          <p class="starters-label" id="starters-label" hidden>Try asking</p>
          <ul class="starters" aria-labelledby="starters-label"></ul>
        </div>
        <ol class="messages" aria-label="Messages"></ol>
      </div>
    </div>
    <form class="composer" novalidate>
      <div class="field">
        <label class="sr-only" for="input">Your question</label>
        <textarea id="input" rows="1" placeholder="Ask a question…" enterkeyhint="send" autocomplete="off"
                  spellcheck="true" aria-describedby="hint"></textarea>
        <button class="send" type="submit" aria-label="Send question" disabled>${ICON.send}</button>
      </div>
      <p class="hint"><span id="hint">Enter to send · Shift+Enter for a new line</span><span class="count" aria-live="polite"></span></p>
    </form>
    <div class="sr-only live" aria-live="polite" aria-atomic="true"></div>
    <div class="sr-only alert" role="alert" aria-atomic="true"></div>
  </section>
  <dialog class="doc" aria-labelledby="doc-title">
    <div class="doc-head">
      <div class="doc-titles"><h2 class="doc-title" id="doc-title"></h2><p class="doc-meta"></p>
        <p class="doc-links"><a class="doc-page" target="_blank" rel="noopener noreferrer" hidden>Open as a page</a><a class="doc-original" target="_blank" rel="noopener noreferrer nofollow" hidden>Original page</a></p></div>
      <button class="icon-btn doc-close" type="button" aria-label="Close document">${ICON.close}</button>
    </div>
    <div class="doc-body" tabindex="0" role="document" aria-label="Document text">
      <p class="doc-status" hidden></p>
      <div class="doc-text"></div>
    </div>
  </dialog>
</div>`;

  // ------------------------------------------------------------------ helpers
  /** An element with a class and optional text (always set as text, never parsed). */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /** Constant icon markup (never data) as a DOM node. */
  function icon(name) {
    const holder = document.createElement("template");
    holder.innerHTML = ICON[name];
    return holder.content.firstElementChild;
  }

  /** Python counts characters by code point, JavaScript by UTF-16 unit: map the former to the latter. */
  function offsetMapper(text) {
    if (!/[\uD800-\uDFFF]/.test(text)) return (i) => Math.max(0, Math.min(i, text.length));
    const units = [];
    let u = 0;
    for (const ch of text) {
      units.push(u);
      u += ch.length;
    }
    units.push(u);
    return (i) => units[Math.max(0, Math.min(i, units.length - 1))];
  }

  /**
   * Append ``text`` to ``parent`` as text nodes, wrapping spans in <mark class=...>.
   * ``spans``: [{start, end, cls, rank}] in code points; where spans overlap the highest rank wins.
   */
  function appendMarked(parent, text, spans) {
    const map = offsetMapper(text);
    const live = [];
    for (const s of spans || []) {
      const start = map(Number(s.start) || 0);
      const end = map(Number(s.end) || 0);
      if (end > start) live.push({ start, end, cls: s.cls, rank: s.rank || 0 });
    }
    const cuts = new Set([0, text.length]);
    for (const s of live) {
      cuts.add(s.start);
      cuts.add(s.end);
    }
    const points = [...cuts].sort((a, b) => a - b);
    const pieces = [];
    for (let i = 0; i < points.length - 1; i++) {
      const a = points[i];
      const b = points[i + 1];
      let best = null;
      for (const s of live) if (s.start <= a && s.end >= b && (!best || s.rank > best.rank)) best = s;
      const cls = best ? best.cls : "";
      const last = pieces[pieces.length - 1];
      if (last && last.cls === cls) last.end = b;
      else pieces.push({ cls, start: a, end: b });
    }
    for (const piece of pieces) {
      const chunk = text.slice(piece.start, piece.end);
      if (!piece.cls) parent.append(document.createTextNode(chunk));
      else parent.append(el("mark", piece.cls, chunk));
    }
    return parent;
  }

  function parseStarters(value) {
    if (!value) return null;
    const text = value.trim();
    if (!text) return null;
    if (text.startsWith("[")) {
      try {
        const list = JSON.parse(text);
        if (Array.isArray(list)) return list.map((q) => String(q).trim()).filter(Boolean);
      } catch (_) {
        /* fall through to "|"-separated */
      }
    }
    return text.split("|").map((q) => q.trim()).filter(Boolean);
  }

  function normalizeEndpoint(value) {
    try {
      return new URL(value || DEFAULT_ENDPOINT, document.baseURI).href.replace(/\/+$/, "");
    } catch (_) {
      return String(value || DEFAULT_ENDPOINT).replace(/\/+$/, "");
    }
  }

  function clip(text, limit) {
    const s = String(text || "");
    return s.length > limit ? s.slice(0, limit - 1) + "…" : s;
  }

  function basename(source) {
    const s = String(source || "");
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return s; // a URL: show it whole
    const parts = s.split(/[\\/]/).filter(Boolean);
    return parts.length ? parts[parts.length - 1] : s;
  }

  /**
   * A web page opened at the cited words: the source's address with a text fragment
   * (``#:~:text=``, https://wicg.github.io/scroll-to-text-fragment/); null when the source is
   * not an http(s) address. A long sentence is named by its first and last words.
   */
  function textFragmentLink(source, cited) {
    let url;
    try {
      url = new URL(String(source || ""));
    } catch (_) {
      return null;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    url.hash = "";
    const words = String(cited || "").split(/\s+/).filter(Boolean);
    if (!words.length) return url.href;
    // "-", "&" and "," have meanings inside the directive, so they are escaped too
    const enc = (w) => encodeURIComponent(w.join(" ")).replace(/-/g, "%2D");
    const directive = words.length <= 10 ? enc(words) : `${enc(words.slice(0, 4))},${enc(words.slice(-4))}`;
    return `${url.href}#:~:text=${directive}`;
  }

  /** The sentence a card cites: the answer, else the first highlight, else its first sentence. */
  function citedSentence(passage, answer) {
    const text = String(passage.text || "");
    if (answer && answer.passage_id === passage.passage_id) return text.slice(answer.start, answer.end);
    const spans = Array.isArray(passage.highlights) ? passage.highlights : [];
    if (spans.length) return text.slice(spans[0][0], spans[0][1]);
    const match = /^[\s\S]*?[.!?](?=\s|$)/.exec(text);
    return match ? match[0] : text;
  }

  /** Text without its [n] citation markers (the widget shows them as buttons). */
  function stripMarkers(text) {
    return String(text || "").replace(/\s*\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\]/g, "");
  }

  /** A server message as a sentence: capitalized, with a full stop. */
  function sentence(message) {
    const s = String(message || "").trim();
    if (!s) return "";
    const capital = s.charAt(0).toUpperCase() + s.slice(1);
    return /[.!?]$/.test(capital) ? capital : capital + ".";
  }

  class ChatError extends Error {
    constructor(kind, { status = 0, message = "", retryAfter = null } = {}) {
      super(message || kind);
      this.kind = kind;
      this.status = status;
      this.serverMessage = message;
      this.retryAfter = retryAfter;
    }

    describe() {
      if (this.kind === "network") {
        return {
          title: "Can't reach the question service",
          detail:
            "Check your connection and try again. If it keeps failing, the service may be down " +
            "or may not accept requests from this site.",
        };
      }
      if (this.kind === "timeout") {
        return { title: "The service is taking too long", detail: "It didn't answer in time. Try again in a moment." };
      }
      if (this.kind === "invalid") {
        return { title: "Unexpected reply from the service", detail: "The answer couldn't be read. Try again." };
      }
      const said = sentence(this.serverMessage);
      if (this.status === 429) {
        const wait = this.retryAfter
          ? `Try again in ${this.retryAfter} second${this.retryAfter === 1 ? "" : "s"}.`
          : said || "Wait a moment and try again.";
        return { title: "Too many questions at once", detail: wait };
      }
      if (this.status >= 500 || this.status === 409) {
        return {
          title: "The service ran into a problem",
          detail: said || `It answered with an error (HTTP ${this.status}). Try again in a moment.`,
        };
      }
      return {
        title: "The service couldn't take this question",
        detail: said || `It refused the request (HTTP ${this.status}).`,
      };
    }
  }

  // ------------------------------------------------------------------ the element
  class QADocsChat extends HTMLElement {
    constructor() {
      super();
      this._built = false;
      this.messages = [];
      this.busy = false;
      this.docCache = new Map();
      this.config = { title: null, starters: null, maxChars: 2000, maxTurns: 20, feedback: true, maxComment: 1000, generation: false };
      this._seq = 0;
      this._abort = null;
    }

    connectedCallback() {
      if (this._built) return;
      this._built = true;
      this._readOptions();
      this._build();
      this._restore();
      this._renderAll();
      this._loadConfig();
      if (this.mode === "page" || this._initiallyOpen) this._setOpen(true, { focus: false });
    }

    // ---------------------------------------------------------------- public API
    /** Open the panel (launcher mode) and move focus into it. */
    open() { this._setOpen(true, { focus: true }); }
    /** Close the panel (launcher mode) and return focus to the launcher. */
    close() { this._setOpen(false, { focus: true }); }
    /** Ask a question as if typed. */
    ask(question) { return this._send(String(question || "")); }
    /** Forget the conversation. */
    clear() { this._clear(); }

    // ---------------------------------------------------------------- setup
    _readOptions() {
      const attr = (name) => this.getAttribute(name);
      this.mode = attr("mode") === "page" ? "page" : "launcher";
      this.endpoint = normalizeEndpoint(attr("endpoint"));
      this.collection = (attr("collection") || "").trim();
      this.apiKey = (attr("key") || "").trim();
      this.headingText = (attr("heading") || "").trim();
      this.startersOption = parseStarters(attr("starters"));
      const k = parseInt(attr("top-k") || "5", 10);
      this.topK = Number.isFinite(k) ? Math.min(50, Math.max(1, k)) : 5;
      const theme = attr("theme");
      this.theme = theme === "light" || theme === "dark" ? theme : "auto";
      const open = attr("open");
      this._initiallyOpen = open !== null && open !== "false";
      this.storageKey = `qa-docs-chat:v1:${this.endpoint}|${this.collection}`;
    }

    /** Resolve the theme to light or dark; "auto" follows prefers-color-scheme as it changes. */
    _followColorScheme() {
      const query = this.theme === "auto" && window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
      const apply = () => {
        this.$.root.dataset.theme = this.theme === "dark" || (query && query.matches) ? "dark" : "light";
      };
      apply();
      if (query) query.addEventListener("change", apply);
    }

    _build() {
      const shadow = this.attachShadow({ mode: "open" });
      const style = document.createElement("style");
      style.textContent = CSS;
      const template = document.createElement("template");
      template.innerHTML = TEMPLATE; // constant markup only
      shadow.append(style, template.content.cloneNode(true));
      const $ = (selector) => shadow.querySelector(selector);
      this.$ = {
        root: $(".root"), launcher: $(".launcher"), launcherLabel: $(".launcher-label"), panel: $(".panel"),
        heading: $(".heading"), clear: $(".clear"), close: $(".close"), scroller: $(".scroller"),
        empty: $(".empty"), starters: $(".starters"), startersLabel: $(".starters-label"), messages: $(".messages"),
        form: $(".composer"), input: $("textarea"), send: $(".send"), count: $(".count"),
        live: $(".live"), alert: $(".alert"),
        doc: $(".doc"), docTitle: $(".doc-title"), docMeta: $(".doc-meta"), docClose: $(".doc-close"),
        docBody: $(".doc-body"), docStatus: $(".doc-status"), docText: $(".doc-text"),
        docPage: $(".doc-page"), docOriginal: $(".doc-original"),
      };
      const r = this.$;
      r.root.dataset.mode = this.mode;
      this._followColorScheme();
      r.root.dataset.open = "false";
      if (this.mode === "launcher") {
        r.panel.setAttribute("role", "dialog");
        r.panel.setAttribute("aria-modal", "false");
        r.panel.hidden = true;
      } else {
        r.launcher.hidden = true;
        r.close.hidden = true;
      }
      this._setHeading(this.headingText || "Ask the documents");
      r.input.maxLength = this.config.maxChars;

      r.launcher.addEventListener("click", () => this._setOpen(r.panel.hidden, { focus: true }));
      r.close.addEventListener("click", () => this._setOpen(false, { focus: true }));
      r.clear.addEventListener("click", () => this._clear());
      r.form.addEventListener("submit", (event) => {
        event.preventDefault();
        this._send(r.input.value);
      });
      r.input.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey && !event.metaKey) {
          event.preventDefault();
          this._send(r.input.value);
        }
      });
      r.input.addEventListener("input", () => {
        this._autosize();
        this._updateComposer();
        this._saveDraft();
      });
      r.root.addEventListener("keydown", (event) => {
        if (event.key !== "Escape" || r.doc.open || this.mode !== "launcher" || r.panel.hidden) return;
        event.preventDefault();
        this._setOpen(false, { focus: true });
      });
      r.docClose.addEventListener("click", () => r.doc.close());
      r.doc.addEventListener("click", (event) => {
        if (event.target === r.doc) r.doc.close(); // a click on the backdrop
      });
      r.doc.addEventListener("close", () => {
        const opener = this._docOpener;
        this._docOpener = null;
        if (opener && opener.isConnected) opener.focus();
      });
    }

    _setHeading(text) {
      this.$.heading.textContent = text;
      this.$.launcherLabel.textContent = this.$.panel.hidden ? `Open chat: ${text}` : `Close chat: ${text}`;
      if (this.mode === "page") document.title = text;
    }

    async _loadConfig() {
      let config = null;
      try {
        config = await this._fetchJSON("/v1/config", { timeout: 15000 });
      } catch (_) {
        config = null; // not fatal: asking will show what is wrong
      }
      if (config) {
        if (typeof config.title === "string" && config.title.trim()) this.config.title = config.title.trim();
        // The service's starters are about its default collection: not shown for another one.
        const sameCollection = !this.collection || !config.collection || this.collection === config.collection;
        if (Array.isArray(config.starter_questions) && sameCollection) {
          this.config.starters = config.starter_questions.map(String);
        }
        if (Number.isInteger(config.max_question_chars) && config.max_question_chars > 0) this.config.maxChars = config.max_question_chars;
        if (Number.isInteger(config.max_history_turns) && config.max_history_turns >= 0) this.config.maxTurns = config.max_history_turns;
        this._applyFeedbackConfig(config);
        this.config.generation = config.generation === true; // a model writes answers: stream them
        this.$.input.maxLength = this.config.maxChars;
        if (!this.headingText && this.config.title) this._setHeading(this.config.title);
        this._updateComposer();
      }
      this._renderStarters();
    }

    // ---------------------------------------------------------------- open / close
    _setOpen(open, { focus }) {
      const r = this.$;
      if (this.mode === "page") {
        if (focus) r.input.focus();
        return;
      }
      r.panel.hidden = !open;
      r.root.dataset.open = String(open);
      r.launcher.setAttribute("aria-expanded", String(open));
      this._setHeading(r.heading.textContent);
      this._saveState();
      if (open) {
        this._autosize();
        this._scrollToEnd();
        if (focus) r.input.focus();
      } else if (focus) {
        r.launcher.focus();
      }
    }

    _isOpen() {
      return this.mode === "page" || !this.$.panel.hidden;
    }

    // ---------------------------------------------------------------- storage
    _restore() {
      let saved = null;
      try {
        saved = JSON.parse(sessionStorage.getItem(this.storageKey) || "null");
      } catch (_) {
        saved = null;
      }
      if (!saved || saved.v !== 1) return;
      if (Array.isArray(saved.messages)) {
        this.messages = saved.messages.filter(
          (m) => m && ((m.role === "user" && typeof m.text === "string") || (m.role === "assistant" && m.data && typeof m.data === "object"))
        );
      }
      if (typeof saved.draft === "string") this.$.input.value = saved.draft;
      // A question still waiting when the page went away: back into the input, not lost.
      const last = this.messages[this.messages.length - 1];
      if (last && last.role === "user") {
        this.messages.pop();
        if (!this.$.input.value.trim()) this.$.input.value = last.text;
      }
      if (typeof saved.open === "boolean" && this.mode === "launcher") this._initiallyOpen = saved.open;
    }

    _saveState() {
      if (!this._built) return;
      const messages = this.messages
        .filter((m) => !m.failed && (m.role === "user" || m.role === "assistant"))
        .slice(-STORED_MESSAGES)
        .map((m) => (m.role === "user" ? { role: "user", text: m.text } : { role: "assistant", data: m.data }));
      const state = {
        v: 1,
        messages,
        draft: this.$.input.value,
        open: this.mode === "launcher" ? !this.$.panel.hidden : undefined,
      };
      try {
        sessionStorage.setItem(this.storageKey, JSON.stringify(state));
      } catch (_) {
        /* storage full or blocked: the conversation just won't survive a reload */
      }
    }

    _saveDraft() {
      clearTimeout(this._draftTimer);
      this._draftTimer = setTimeout(() => this._saveState(), 250);
    }

    // ---------------------------------------------------------------- network
    /** The key's header (data-key / key), or none. */
    _auth() { return this.apiKey ? { Authorization: `Bearer ${this.apiKey}` } : {}; }

    async _fetchJSON(path, { method = "GET", body, timeout = REQUEST_TIMEOUT_MS, signal } = {}) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort("timeout"), timeout);
      const onAbort = () => controller.abort("cancel");
      if (signal) signal.addEventListener("abort", onAbort, { once: true });
      let response;
      try {
        const init = { method, mode: "cors", credentials: "omit", signal: controller.signal, headers: { Accept: "application/json", ...this._auth() } };
        if (body !== undefined) {
          init.headers["Content-Type"] = "application/json";
          init.body = JSON.stringify(body);
        }
        response = await fetch(this.endpoint + path, init);
        let data = null;
        try {
          data = await response.json();
        } catch (_) {
          data = null;
        }
        if (!response.ok) {
          const message = data && data.error && typeof data.error.message === "string" ? data.error.message : "";
          const retry = parseInt(response.headers.get("Retry-After") || "", 10);
          throw new ChatError("http", { status: response.status, message, retryAfter: Number.isFinite(retry) ? retry : null });
        }
        if (!data || typeof data !== "object") throw new ChatError("invalid");
        return data;
      } catch (error) {
        if (error instanceof ChatError) throw error;
        if (controller.signal.aborted) {
          throw new ChatError(controller.signal.reason === "cancel" ? "cancelled" : "timeout");
        }
        throw new ChatError("network", { message: String(error && error.message) });
      } finally {
        clearTimeout(timer);
        if (signal) signal.removeEventListener("abort", onAbort);
      }
    }

    _query(extra = {}) {
      const params = new URLSearchParams();
      if (this.collection) params.set("collection", this.collection);
      for (const [key, value] of Object.entries(extra)) params.set(key, String(value));
      const text = params.toString();
      return text ? `?${text}` : "";
    }

    _history() {
      const limit = Math.max(0, Math.min(HISTORY_MESSAGES, this.config.maxTurns));
      if (!limit) return [];
      const turns = [];
      for (const m of this.messages) {
        if (m.failed) continue;
        if (m.role === "user") turns.push({ role: "user", content: clip(m.text, HISTORY_CHARS) });
        else if (m.role === "assistant") {
          const content = this._writtenText(m.data) || (m.data.answer && m.data.answer.text) || m.data.notice || "";
          if (content) turns.push({ role: "assistant", content: clip(content, HISTORY_CHARS) });
        }
      }
      return turns.slice(-limit);
    }

    // ---------------------------------------------------------------- asking
    async _send(raw) {
      const r = this.$;
      const question = String(raw || "").trim();
      if (!question) {
        r.input.focus();
        return;
      }
      if (this.busy) return;
      if (question.length > this.config.maxChars) {
        this._announce(`The question is too long: at most ${this.config.maxChars} characters.`, true);
        return;
      }
      this._dropFailed();
      const history = this._history();
      const user = { role: "user", text: question };
      this.messages.push(user);
      this._appendMessage(user);
      if (r.input.value.trim() === question) {
        r.input.value = "";
        this._autosize();
      }
      this._setBusy(true);
      const thinking = this._appendThinking();
      this._scrollToEnd();
      this._saveState();

      const seq = ++this._seq;
      this._abort = new AbortController();
      const body = { question, history, top_k: this.topK };
      if (this.collection) body.collection = this.collection;
      try {
        const data = this.config.generation
          ? await this._askStreaming(body, this._abort.signal, thinking)
          : await this._fetchJSON("/v1/ask", { method: "POST", body, signal: this._abort.signal });
        if (seq !== this._seq) return;
        const reply = { role: "assistant", data: this._compact(data) };
        reply.data.asked = { question, history }; // what feedback on this answer refers to
        this.messages.push(reply);
        thinking.remove();
        const node = this._appendMessage(reply);
        this._announce(this._spoken(reply.data));
        this._scrollTo(user.node && user.node.isConnected ? user.node : node);
      } catch (error) {
        if (seq !== this._seq || (error && error.kind === "cancelled")) return;
        thinking.remove();
        user.failed = true;
        const chatError = error instanceof ChatError ? error : new ChatError("network");
        const failure = { role: "error", question, error: chatError };
        this.messages.push(failure);
        this._markFailed(user);
        const node = this._appendMessage(failure);
        if (!r.input.value.trim()) {
          r.input.value = question; // nothing typed is ever lost
          this._autosize();
        }
        const { title, detail } = chatError.describe();
        this._announce(`${title}. ${detail}`, true);
        this._scrollTo(node);
      } finally {
        if (seq === this._seq) {
          this._setBusy(false);
          this._saveState();
          if (this._isOpen() && !r.doc.open) r.input.focus({ preventScroll: true });
        }
      }
    }

    _compact(data) {
      const passages = Array.isArray(data.passages) ? data.passages : [];
      return {
        query: String(data.query || ""),
        answer: data.answer && typeof data.answer === "object" ? data.answer : null,
        notice: typeof data.notice === "string" ? data.notice : null,
        collection: String(data.collection || this.collection || ""),
        generation: typeof data.generation === "string" ? data.generation : null,
        generated: this._compactGenerated(data.generated),
        passages: passages.map((p) => ({
          rank: p.rank, passage_id: p.passage_id, score: p.score, text: String(p.text || ""),
          citation: p.citation || {}, highlights: Array.isArray(p.highlights) ? p.highlights : [],
        })),
      };
    }

    _spoken(data) {
      const count = data.passages.length;
      const sources = count ? ` ${count} source${count === 1 ? "" : "s"} listed below.` : "";
      const written = this._writtenText(data);
      if (written) return `Answer: ${written}${sources}`;
      if (data.answer) return `Answer: ${data.answer.text}${sources}`;
      return `${this._notice(data)}${sources}`;
    }

    /** What to say when there is no answer: the server's notice, else a plain fallback. */
    _notice(data) {
      if (data.notice) return data.notice;
      return (data.passages || []).length
        ? "The documents don't answer this question. The closest passages are listed below."
        : "Nothing in the documents matches this question.";
    }

    _dropFailed() {
      const keep = [];
      for (const m of this.messages) {
        if (m.failed || m.role === "error") {
          if (m.node) m.node.remove();
        } else {
          keep.push(m);
        }
      }
      this.messages = keep;
      this._refreshEmpty();
    }

    _clear() {
      this._seq++;
      if (this._abort) this._abort.abort();
      this._setBusy(false);
      this.messages = [];
      this._renderAll();
      this._saveState();
      this._announce("Conversation cleared.");
      this.$.input.focus();
    }

    _setBusy(busy) {
      this.busy = busy;
      this.$.scroller.setAttribute("aria-busy", String(busy));
      this.$.panel.setAttribute("aria-busy", String(busy));
      this._updateComposer();
    }

    _updateComposer() {
      const r = this.$;
      const length = r.input.value.length;
      r.send.disabled = this.busy || !r.input.value.trim();
      const max = this.config.maxChars;
      if (length > max * 0.8) {
        r.count.textContent = `${length} / ${max}`;
        r.count.classList.toggle("over", length >= max);
      } else {
        r.count.textContent = "";
      }
    }

    _autosize() {
      const input = this.$.input;
      input.style.height = "auto";
      if (input.scrollHeight) input.style.height = `${Math.min(input.scrollHeight, 168)}px`;
    }

    _announce(text, assertive = false) {
      const target = assertive ? this.$.alert : this.$.live;
      target.textContent = "";
      setTimeout(() => {
        target.textContent = text;
      }, 60);
    }

    // ---------------------------------------------------------------- scrolling
    _scrollToEnd() {
      const s = this.$.scroller;
      s.scrollTop = s.scrollHeight;
    }

    _scrollTo(node, margin = 12) {
      const s = this.$.scroller;
      const top = node.getBoundingClientRect().top - s.getBoundingClientRect().top + s.scrollTop - margin;
      const calm = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      s.scrollTo({ top: Math.max(0, top), behavior: calm ? "auto" : "smooth" });
    }

    // ---------------------------------------------------------------- rendering
    _renderAll() {
      const r = this.$;
      r.messages.replaceChildren();
      for (const m of this.messages) this._appendMessage(m);
      this._refreshEmpty();
    }

    _refreshEmpty() {
      const empty = this.messages.length === 0;
      this.$.empty.hidden = !empty;
      this.$.clear.disabled = empty;
    }

    _renderStarters() {
      const r = this.$;
      const starters = (this.startersOption || this.config.starters || []).slice(0, 6);
      r.starters.replaceChildren();
      for (const question of starters) {
        const li = el("li");
        const chip = el("button", "chip", question);
        chip.type = "button";
        chip.addEventListener("click", () => this._send(question));
        li.append(chip);
        r.starters.append(li);
      }
      r.startersLabel.hidden = starters.length === 0;
    }

    _appendMessage(m) {
      let node;
      if (m.role === "user") node = this._renderUser(m);
      else if (m.role === "assistant") node = this._renderAssistant(m.data);
      else node = this._renderError(m);
      m.node = node;
      this.$.messages.append(node);
      this._refreshEmpty();
      return node;
    }

    _renderUser(m) {
      const li = el("li", "msg user" + (m.failed ? " failed" : ""));
      const bubble = el("div", "bubble");
      bubble.append(el("span", "sr-only", "You asked: "), document.createTextNode(m.text));
      li.append(bubble);
      return li;
    }

    _markFailed(m) {
      if (m.node) m.node.classList.add("failed");
    }

    _appendThinking() {
      const li = el("li", "msg bot thinking");
      const bubble = el("div", "bubble");
      const dots = el("span", "dots");
      dots.setAttribute("aria-hidden", "true");
      dots.append(el("i"), el("i"), el("i"));
      bubble.append(dots, el("span", "", "Searching the documents…"));
      li.append(bubble);
      this.$.messages.append(li);
      this._refreshEmpty();
      return li;
    }

    _renderError(m) {
      const li = el("li", "msg bot error");
      const box = el("div", "error-box");
      const main = el("div", "error-main");
      const { title, detail } = m.error.describe();
      main.append(el("p", "error-title", title), el("p", "error-detail", detail));
      const retry = el("button", "retry");
      retry.type = "button";
      retry.append(icon("retry"), el("span", "", "Retry"));
      retry.addEventListener("click", () => {
        const input = this.$.input;
        if (input.value.trim() === m.question) input.value = "";
        this._send(m.question);
      });
      main.append(retry);
      box.append(icon("alert"), main);
      li.append(box);
      return li;
    }

    _renderAssistant(data) {
      const li = el("li", "msg bot");
      const bubble = el("div", "bubble");
      const passages = data.passages || [];
      const answer = data.answer;
      const cardNodes = [];
      const answerIndex = answer ? passages.findIndex((p) => p.passage_id === answer.passage_id) : -1;

      const generated = data.generated && typeof data.generated === "object" ? data.generated : null;
      if (generated && generated.status === "written") {
        bubble.append(this._renderWritten(generated, passages, cardNodes, li));
      } else if (answer) {
        const p = el("p", "answer-text");
        p.append(el("span", "sr-only", "Answer: "), document.createTextNode(String(answer.text || "")));
        if (answerIndex >= 0) {
          const cites = el("span", "cites");
          const c = passages[answerIndex].citation || {};
          const marker = el("button", "cite", String(answerIndex + 1));
          marker.type = "button";
          marker.setAttribute("aria-label", `Source ${answerIndex + 1}: ${c.title || "passage"}, paragraph ${c.paragraph}`);
          marker.addEventListener("click", () => this._revealCard(cardNodes[answerIndex], li));
          cites.append(marker);
          p.append(cites);
        }
        bubble.append(p);
        if (generated && generated.notice) bubble.append(el("p", "gen-notice", generated.notice));
      } else {
        bubble.classList.add("notice");
        bubble.append(icon("info"), el("p", "", this._notice(data)));
      }
      li.append(bubble);

      if (passages.length) {
        const section = el("section", "sources");
        const label = el("h4", "sources-label", answer ? "Sources" : "Closest passages");
        const list = el("ol", "cards");
        section.append(label, list);
        passages.forEach((passage, index) => {
          const card = this._renderCard(passage, index, answer, data);
          cardNodes.push(card);
          list.append(card);
          if (index >= VISIBLE_CARDS && index !== answerIndex) card.hidden = true;
        });
        const hidden = cardNodes.filter((c) => c.hidden);
        if (hidden.length) {
          const more = el("button", "link-btn more-cards", `Show ${hidden.length} more passage${hidden.length === 1 ? "" : "s"}`);
          more.type = "button";
          more.addEventListener("click", () => {
            hidden.forEach((c) => { c.hidden = false; });
            more.remove();
            hidden[0].focus();
          });
          section.append(more);
          li._showAll = () => {
            hidden.forEach((c) => { c.hidden = false; });
            more.remove();
          };
        }
        li.append(section);
      }
      if (data.asked) li.append(...this._renderFeedback(data));
      return li;
    }

    _revealCard(card, li) {
      if (!card) return;
      if (card.hidden && li._showAll) li._showAll();
      this._scrollTo(card);
      card.focus({ preventScroll: true });
      card.classList.add("flash");
      setTimeout(() => card.classList.remove("flash"), 1400);
    }

    _renderCard(passage, index, answer, data) {
      const c = passage.citation || {};
      const isAnswer = !!answer && answer.passage_id === passage.passage_id;
      const card = el("li", "card" + (isAnswer ? " is-answer" : ""));
      card.tabIndex = -1;
      card.dataset.passageId = String(passage.passage_id);

      const head = el("div", "card-head");
      const num = el("span", "num");
      num.append(el("span", "sr-only", "Source "), document.createTextNode(String(index + 1)));
      const titles = el("div", "card-titles");
      const title = el("h5", "card-title", c.title || c.document_id || "Untitled document");
      const meta = [];
      if (c.paragraph) meta.push(`Paragraph ${c.paragraph}`);
      if (c.page) meta.push(`page ${c.page}`);
      if (c.source) meta.push(basename(c.source));
      titles.append(title, el("p", "card-meta", meta.join(" · ")));
      head.append(num, titles);

      const body = el("div", "card-body");
      const before = el("div", "ctx ctx-before");
      const after = el("div", "ctx ctx-after");
      before.hidden = true;
      after.hidden = true;
      const text = el("p", "passage");
      const spans = (passage.highlights || []).map(([start, end]) => ({ start, end, cls: "hl", rank: 1 }));
      if (isAnswer) spans.push({ start: answer.start, end: answer.end, cls: "ans", rank: 2 });
      appendMarked(text, passage.text, spans);
      body.append(before, text, after);

      const actions = el("div", "card-actions");
      const more = el("button", "link-btn btn-context");
      more.type = "button";
      more.setAttribute("aria-expanded", "false");
      const moreLabel = el("span", "", "More context");
      more.append(icon("expand"), moreLabel);
      const open = el("button", "link-btn btn-source");
      open.type = "button";
      open.append(icon("doc"), el("span", "", "Open source"));
      open.setAttribute("aria-label", `Open source: ${c.title || "document"}, paragraph ${c.paragraph}`);
      actions.append(more, open);
      const onPage = textFragmentLink(c.source, citedSentence(passage, answer));
      if (onPage) {
        // a web source: its own page, scrolled to the cited sentence and marked by the browser
        const link = el("a", "link-btn btn-page");
        link.href = onPage;
        link.target = "_blank";
        link.rel = "noopener noreferrer nofollow";
        link.append(icon("doc"), el("span", "", "On the page"));
        link.setAttribute("aria-label", `Open ${c.title || "the page"} on its site, at the cited sentence`);
        actions.append(link);
      }
      const error = el("p", "card-error");
      error.hidden = true;
      error.setAttribute("role", "status");
      card.append(head, body, actions, error);

      let loaded = false;
      more.addEventListener("click", async () => {
        const expanded = more.getAttribute("aria-expanded") === "true";
        if (expanded) {
          before.hidden = after.hidden = true;
          more.setAttribute("aria-expanded", "false");
          moreLabel.textContent = "More context";
          return;
        }
        if (!loaded) {
          more.setAttribute("aria-busy", "true");
          moreLabel.textContent = "Loading…";
          error.hidden = true;
          try {
            const ctx = await this._fetchJSON(
              `/v1/passages/${encodeURIComponent(passage.passage_id)}${this._query({ before: 1, after: 1 })}`
            );
            before.replaceChildren(...(ctx.before || []).map((p) => el("p", "", p.text)));
            after.replaceChildren(...(ctx.after || []).map((p) => el("p", "", p.text)));
            loaded = true;
          } catch (err) {
            const d = err instanceof ChatError ? err.describe() : { title: "Couldn't load the context", detail: "" };
            error.textContent = `Couldn't load more context: ${d.detail || d.title}`;
            error.hidden = false;
            moreLabel.textContent = "More context";
            more.removeAttribute("aria-busy");
            return;
          }
          more.removeAttribute("aria-busy");
        }
        before.hidden = !before.childElementCount;
        after.hidden = !after.childElementCount;
        if (before.hidden && after.hidden) {
          error.textContent = "This passage is the whole document.";
          error.hidden = false;
        }
        more.setAttribute("aria-expanded", "true");
        moreLabel.textContent = "Less context";
      });
      open.addEventListener("click", () => this._openDocument(passage, isAnswer ? answer : null, open));
      return card;
    }

    // ---------------------------------------------------------------- generated answers (streamed)
    // When the service has a model (config.generation), /v1/ask is asked with stream: true: the
    // extractive reply arrives at once, the model's text as it is written, then the check, which
    // may strike sentences out. Without a model the plain JSON path above is used, as before.

    /** POST /v1/ask as Server-Sent Events, showing the text in ``thinking`` as it arrives;
     *  resolves to the reply with its checked ``generated`` answer. */
    async _askStreaming(body, signal, thinking) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort("timeout"), REQUEST_TIMEOUT_MS);
      const onAbort = () => controller.abort("cancel");
      if (signal) signal.addEventListener("abort", onAbort, { once: true });
      try {
        const response = await fetch(this.endpoint + "/v1/ask", {
          method: "POST", mode: "cors", credentials: "omit", signal: controller.signal,
          headers: { Accept: "text/event-stream", "Content-Type": "application/json", ...this._auth() },
          body: JSON.stringify({ ...body, stream: true }),
        });
        if (!response.ok) {
          let data = null;
          try {
            data = await response.json();
          } catch (_) {
            data = null;
          }
          const message = data && data.error && typeof data.error.message === "string" ? data.error.message : "";
          const retry = parseInt(response.headers.get("Retry-After") || "", 10);
          throw new ChatError("http", { status: response.status, message, retryAfter: Number.isFinite(retry) ? retry : null });
        }
        let reply = null;
        let final = null;
        const show = this._streamInto(thinking);
        for await (const [event, data] of this._readEvents(response.body)) {
          if (event === "reply") reply = data;
          else if (event === "delta") show(String((data && data.text) || ""));
          else if (event === "final") final = data;
        }
        if (!reply || typeof reply !== "object" || !final) throw new ChatError("invalid");
        return { ...reply, generated: final.generated || null };
      } catch (error) {
        if (error instanceof ChatError) throw error;
        if (controller.signal.aborted) {
          throw new ChatError(controller.signal.reason === "cancel" ? "cancelled" : "timeout");
        }
        throw new ChatError("network", { message: String(error && error.message) });
      } finally {
        clearTimeout(timer);
        if (signal) signal.removeEventListener("abort", onAbort);
      }
    }

    /** The [event, data] pairs of a Server-Sent Events body (data parsed as JSON). */
    async *_readEvents(stream) {
      const reader = stream.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
        const blocks = buffer.split(/\r?\n\r?\n/);
        buffer = done ? "" : blocks.pop();
        for (const block of blocks) {
          let event = "message";
          const data = [];
          for (const line of block.split(/\r?\n/)) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (!data.length) continue; // a comment (keep-alive ping)
          let parsed = null;
          try {
            parsed = JSON.parse(data.join("\n"));
          } catch (_) {
            throw new ChatError("invalid");
          }
          yield [event, parsed];
        }
        if (done) return;
      }
    }

    /** A function that appends streamed text to the "thinking" message, turning it into the answer being written. */
    _streamInto(li) {
      let text = null;
      return (piece) => {
        if (!piece) return;
        if (!text) {
          li.className = "msg bot streaming";
          const bubble = li.querySelector(".bubble");
          text = document.createTextNode("");
          const caret = el("span", "caret");
          caret.setAttribute("aria-hidden", "true");
          bubble.replaceChildren(el("span", "sr-only", "Writing the answer: "), text, caret);
        }
        text.data += piece;
        this._scrollToEnd();
      };
    }

    /** A written answer: kept sentences with their citation buttons, dropped ones struck out. */
    _renderWritten(generated, passages, cardNodes, li) {
      const p = el("p", "answer-text");
      p.append(el("span", "sr-only", "Answer: "));
      (generated.sentences || []).forEach((s, i) => {
        if (i) p.append(document.createTextNode(" "));
        if (!s.kept) {
          const struck = el("s", "retracted");
          struck.title = "Retracted: the passages it cites don't support it";
          struck.append(el("span", "sr-only", "Retracted sentence: "), document.createTextNode(stripMarkers(s.raw)));
          p.append(struck);
          return;
        }
        p.append(document.createTextNode(stripMarkers(s.text)));
        const cites = el("span", "cites");
        for (const n of s.citations || []) {
          const c = (passages[n - 1] || {}).citation || {};
          const marker = el("button", "cite", String(n));
          marker.type = "button";
          marker.setAttribute("aria-label", `Source ${n}: ${c.title || "passage"}, paragraph ${c.paragraph}`);
          marker.addEventListener("click", () => this._revealCard(cardNodes[n - 1], li));
          cites.append(marker);
        }
        p.append(cites);
      });
      const out = document.createDocumentFragment();
      out.append(p);
      if (generated.notice) out.append(el("p", "gen-notice", generated.notice));
      return out;
    }

    /** The text of a written answer without its markers ("" when the model's answer isn't used). */
    _writtenText(data) {
      const g = data && data.generated;
      return g && g.status === "written" && g.text ? stripMarkers(String(g.text)) : "";
    }

    _compactGenerated(g) {
      if (!g || typeof g !== "object") return null;
      return {
        status: String(g.status || ""), text: typeof g.text === "string" ? g.text : null,
        notice: typeof g.notice === "string" ? g.notice : null, dropped: Number(g.dropped) || 0,
        sentences: (Array.isArray(g.sentences) ? g.sentences : []).map((s) => ({
          text: String(s.text || ""), raw: String(s.raw || ""), kept: s.kept === true,
          citations: (Array.isArray(s.citations) ? s.citations : []).map(Number).filter(Number.isInteger),
        })),
      };
    }

    // ---------------------------------------------------------------- document viewer
    _documentPath(id) {
      // The whole id is one encoded segment ("/" as %2F): a ".." part of an id can never
      // become a dot-segment that the browser resolves into another path of the service.
      return "/v1/documents/" + encodeURIComponent(String(id)) + this._query();
    }

    // ---------------------------------------------------------------- feedback
    _applyFeedbackConfig(config) {
      if (typeof config.feedback === "boolean") this.config.feedback = config.feedback;
      const cap = config.feedback_max_comment_chars;
      if (Number.isInteger(cap) && cap >= 0) this.config.maxComment = cap;
      this.$.root.dataset.feedback = this.config.feedback ? "on" : "off";
    }

    _feedbackButton(iconName, text) {
      const button = el("button", "fb-btn");
      button.type = "button";
      button.setAttribute("aria-pressed", "false");
      button.append(icon(iconName), el("span", "", text));
      return button;
    }

    /** The reasons and the comment box that open on "Not helpful". */
    _feedbackForm() {
      const name = `qa-fb-${(this._fbSeq = (this._fbSeq || 0) + 1)}`;
      const form = el("form", "fb-form");
      form.noValidate = true;
      const set = el("fieldset");
      const reasons = el("div", "fb-reasons");
      const choices = [
        ["wrong_passage", "Wrong passage"],
        ["should_have_answered", "It should have answered"],
        ["incomplete", "Answer incomplete"],
        ["other", "Other"],
      ];
      for (const [value, text] of choices) {
        const label = el("label");
        const radio = el("input");
        radio.type = "radio";
        radio.name = name;
        radio.value = value;
        label.append(radio, document.createTextNode(text));
        reasons.append(label);
      }
      set.append(el("legend", "", "What was wrong? (optional)"), reasons);
      const comment = el("textarea", "fb-comment");
      comment.rows = 2;
      comment.maxLength = this.config.maxComment;
      comment.placeholder = "A short comment (optional)";
      comment.setAttribute("aria-label", "Comment (optional)");
      comment.hidden = this.config.maxComment === 0;
      const actions = el("div", "fb-actions");
      const send = el("button", "fb-send", "Send feedback");
      send.type = "submit";
      const cancel = el("button", "fb-cancel", "Cancel");
      cancel.type = "button";
      actions.append(send, cancel);
      form.append(set, comment, actions);
      return form;
    }

    /** "Was this helpful?" under an answer (or a "not in the documents" reply). */
    _renderFeedback(data) {
      const bar = el("div", "feedback");
      bar.setAttribute("role", "group");
      bar.setAttribute("aria-label", "Rate this answer");
      const yes = this._feedbackButton("up", "Helpful");
      const no = this._feedbackButton("down", "Not helpful");
      no.setAttribute("aria-expanded", "false");
      const status = el("p", "fb-status");
      status.setAttribute("role", "status");
      status.tabIndex = -1;
      bar.append(el("span", "fb-label", "Was this helpful?"), yes, no, status);
      const ui = { bar, yes, no, status, form: null };
      if (data.feedback) this._feedbackDone(ui, data.feedback);
      yes.addEventListener("click", () => this._sendFeedback(data, { rating: "helpful" }, ui));
      no.addEventListener("click", () => {
        if (ui.form) return this._closeFeedbackForm(ui, false);
        ui.form = this._openFeedbackForm(data, ui);
      });
      return [bar];
    }

    /** The form for "Not helpful", made when asked for (the page holds one only while open). */
    _openFeedbackForm(data, ui) {
      const form = this._feedbackForm();
      ui.bar.after(form);
      ui.no.setAttribute("aria-expanded", "true");
      form.querySelector(".fb-cancel").addEventListener("click", () => this._closeFeedbackForm(ui, true));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const picked = form.querySelector("input:checked");
        const comment = form.querySelector("textarea").value.trim();
        const verdict = { rating: "not_helpful", reason: picked ? picked.value : null, comment: comment || null };
        this._sendFeedback(data, verdict, ui);
      });
      form.querySelector("input").focus();
      return form;
    }

    _closeFeedbackForm(ui, focus) {
      if (ui.form) ui.form.remove();
      ui.form = null;
      ui.no.setAttribute("aria-expanded", "false");
      if (focus && !ui.no.disabled) ui.no.focus();
    }

    _feedbackDone(ui, rating) {
      ui.yes.disabled = ui.no.disabled = true;
      (rating === "helpful" ? ui.yes : ui.no).setAttribute("aria-pressed", "true");
      this._closeFeedbackForm(ui, false);
      ui.status.classList.remove("error");
      ui.status.textContent = "Thanks for your feedback.";
    }

    /** POST /v1/feedback: exactly what this answer was, and the reader's verdict. */
    async _sendFeedback(data, verdict, ui) {
      const answer = data.answer;
      const body = {
        question: data.asked.question,
        history: Array.isArray(data.asked.history) ? data.asked.history : [],
        rating: verdict.rating,
        passage_ids: data.passages.map((p) => p.passage_id).filter(Number.isInteger),
        answer: answer
          ? { passage_id: answer.passage_id, start: answer.start, end: answer.end, text: clip(answer.text, 2000) }
          : null,
      };
      if (verdict.reason) body.reason = verdict.reason;
      if (verdict.comment) body.comment = verdict.comment;
      if (data.collection) body.collection = data.collection;
      if (data.generation) body.generation = data.generation;
      const inForm = !!ui.form && ui.form.contains(this.shadowRoot.activeElement);
      ui.yes.disabled = ui.no.disabled = true;
      ui.status.classList.remove("error");
      ui.status.textContent = "Sending…";
      try {
        await this._fetchJSON("/v1/feedback", { method: "POST", body, timeout: 15000 });
      } catch (err) {
        ui.yes.disabled = ui.no.disabled = false;
        const d = err instanceof ChatError ? err.describe() : { title: "Couldn't send it", detail: "" };
        ui.status.textContent = `Couldn't send the feedback. ${d.detail || d.title}`;
        ui.status.classList.add("error");
        return;
      }
      data.feedback = verdict.rating;
      this._saveState();
      this._feedbackDone(ui, verdict.rating);
      if (inForm) ui.status.focus(); // the form is gone: keep the keyboard next to where it was
    }

    // ---------------------------------------------------------------- shareable citations
    /** An http(s) address, resolved against the service, or null (never another scheme). */
    _webAddress(value) {
      if (!value) return null;
      try {
        const url = new URL(String(value), this.endpoint + "/");
        return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
      } catch (_) {
        return null;
      }
    }

    /** The citation's own page (its ``url``), for a new tab or a bookmark. */
    _citationAddress(passage) {
      const c = passage.citation || {};
      if (c.url) return this._webAddress(c.url);
      // a service from before citations had addresses: build the same one
      const params = new URLSearchParams({ passage: String(passage.passage_id) });
      if (this.collection) params.set("collection", this.collection);
      return this._webAddress(`/documents/${encodeURIComponent(String(c.document_id))}?${params}`);
    }

    /** "Open as a page" and, for a web page, "Original page" in the document viewer. */
    _setDocumentLinks(passage, doc, answer) {
      const r = this.$;
      const page = this._citationAddress(passage);
      r.docPage.hidden = !page;
      if (page) r.docPage.href = page;
      else r.docPage.removeAttribute("href");
      const source = doc ? doc.source : (passage.citation || {}).source;
      const web = /^https?:\/\//i.test(String(source || "")) ? this._webAddress(source) : null;
      const original = web ? textFragmentLink(web, citedSentence(passage, answer)) : null;
      r.docOriginal.hidden = !original;
      if (original) r.docOriginal.href = original;
      else r.docOriginal.removeAttribute("href");
    }

    async _openDocument(passage, answer, opener) {
      const r = this.$;
      const c = passage.citation || {};
      this._docOpener = opener;
      r.docTitle.textContent = c.title || c.document_id || "Document";
      r.docMeta.textContent = [c.paragraph ? `Paragraph ${c.paragraph}` : "", c.source ? basename(c.source) : ""].filter(Boolean).join(" · ");
      r.docText.replaceChildren();
      r.docStatus.className = "doc-status";
      r.docStatus.textContent = "Loading the document…";
      r.docStatus.hidden = false;
      this._setDocumentLinks(passage, null, answer);
      if (!r.doc.open) r.doc.showModal();
      r.docBody.focus({ preventScroll: true });
      const token = (this._docToken = (this._docToken || 0) + 1);

      const key = `${c.document_id}\u0000${this.collection}`;
      let doc = this.docCache.get(key);
      if (!doc) {
        try {
          doc = await this._fetchJSON(this._documentPath(c.document_id));
          this.docCache.set(key, doc);
        } catch (err) {
          if (token !== this._docToken) return;
          const d = err instanceof ChatError ? err.describe() : { title: "Couldn't open the document", detail: "" };
          r.docStatus.textContent = `Couldn't open the document. ${d.detail || d.title}`;
          r.docStatus.className = "doc-status error";
          return;
        }
      }
      if (token !== this._docToken || !r.doc.open) return;
      this._setDocumentLinks(passage, doc, answer);
      r.docStatus.hidden = true;
      r.docTitle.textContent = doc.title || c.title || doc.document_id;
      r.docMeta.textContent = [c.paragraph ? `Paragraph ${c.paragraph}` : "", c.page ? `page ${c.page}` : "", doc.source ? basename(doc.source) : ""]
        .filter(Boolean).join(" · ");

      const text = String(doc.text || "");
      const map = offsetMapper(text);
      let start = map(c.char_start);
      let end = map(c.char_end);
      if (text.slice(start, end) !== passage.text) {
        const found = text.indexOf(passage.text);
        if (found >= 0) {
          start = found;
          end = found + passage.text.length;
        }
      }
      const cited = el("mark", "cited");
      cited.id = "cited";
      const spans = (passage.highlights || []).map(([s, e]) => ({ start: s, end: e, cls: "hl", rank: 1 }));
      if (answer) spans.push({ start: answer.start, end: answer.end, cls: "ans", rank: 2 });
      appendMarked(cited, text.slice(start, end), spans);
      r.docText.replaceChildren(document.createTextNode(text.slice(0, start)), cited, document.createTextNode(text.slice(end)));
      requestAnimationFrame(() => {
        const body = r.docBody;
        const top = cited.getBoundingClientRect().top - body.getBoundingClientRect().top + body.scrollTop;
        body.scrollTop = Math.max(0, top - body.clientHeight / 3);
      });
    }
  }

  QADocsChat[BRAND] = true;

  // ------------------------------------------------------------------ registration
  function register() {
    const existing = customElements.get(BASE_NAME);
    if (!existing) {
      customElements.define(BASE_NAME, QADocsChat);
      return BASE_NAME;
    }
    if (existing[BRAND]) return BASE_NAME; // this script was loaded twice: reuse the first copy
    // The name belongs to something else on this page: use a unique one instead of failing.
    for (let i = 0; i < 20; i++) {
      const name = `${BASE_NAME}-${Math.random().toString(36).slice(2, 8)}`;
      if (!customElements.get(name)) {
        customElements.define(name, class extends QADocsChat {});
        return name;
      }
    }
    return null;
  }

  const tagName = register();

  function autoMount() {
    if (!tagName || !SCRIPT) return;
    const data = SCRIPT.dataset;
    if (data.auto === "false") return;
    const mount = () => {
      if (data.mode !== "page" && document.querySelector(tagName)) return; // the page placed its own
      const widget = document.createElement(tagName);
      widget.setAttribute("endpoint", data.endpoint || DEFAULT_ENDPOINT);
      const pairs = { title: "heading", collection: "collection", starters: "starters", open: "open", mode: "mode", topK: "top-k", theme: "theme", key: "key" };
      for (const [key, attribute] of Object.entries(pairs)) {
        if (data[key] !== undefined) widget.setAttribute(attribute, data[key]);
      }
      const target = (data.mode === "page" && data.target && document.querySelector(data.target)) || document.body;
      target.append(widget);
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount, { once: true });
    else mount();
  }

  autoMount();
  window.QADocsChat = window.QADocsChat || { tagName, version: 1 };
})();
