// Live refresh, the console's only script: every 2 s each part of the page marked data-live is
// replaced by the same part of the page fetched again, until it says it is final
// (data-live-final). Everything else works with JavaScript off. A refresh is marked as one, so
// it does not keep the session from idling out; once it has, the page is loaded again (the
// login form).
"use strict";
const EVERY_MS = 2000;

async function refresh() {
  const live = [...document.querySelectorAll("[data-live]:not([data-live-final])")];
  if (live.length === 0) return;
  try {
    const answer = await fetch(location.href, {
      credentials: "same-origin", cache: "no-store", headers: {"X-Console-Refresh": "1"},
    });
    if (answer.redirected) {
      location.reload();
      return;
    }
    if (answer.ok) {
      const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
      for (const part of live) {
        const replacement = fresh.getElementById(part.id);
        if (replacement) part.replaceWith(document.adoptNode(replacement));
      }
    }
  } finally {
    setTimeout(refresh, EVERY_MS);
  }
}

setTimeout(refresh, EVERY_MS);
