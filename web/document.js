/* The document page: bring the cited passage into view and put the keyboard there. */
(() => {
  "use strict";
  const cited = document.getElementById("cited");
  if (!cited) return;
  const calm = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  cited.scrollIntoView({ block: "center", behavior: calm ? "auto" : "instant" });
  cited.focus({ preventScroll: true });
})();
