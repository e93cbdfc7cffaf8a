// The token hand-off: the platform's login (or the development sign-in) redirects to
// /learn/signed-in#token=<JWT>&next=<page>. The fragment never reaches a server; the token moves
// into this tab's sessionStorage and the fragment is erased from the address bar and history.
"use strict";

(function () {
  const params = new URLSearchParams(location.hash.slice(1));
  history.replaceState(null, "", location.pathname);
  const token = params.get("token") || "";
  const next = params.get("next") || "";
  const status = document.getElementById("signed-in-status");
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) {
    status.textContent = "No sign-in token arrived. Sign in again.";
    status.classList.add("error");
    return;
  }
  sessionStorage.setItem(window.CO.TOKEN_KEY, token);
  // Only a learner page of this site: an open redirect would hand the page to anyone.
  const target = next.startsWith("/learn/") && !next.startsWith("//") ? next : document.body.dataset.homeUrl;
  location.replace(target);
})();
