// Shared by every learner page: the learner's token (sessionStorage), calls to the public /v1/
// API with it, API errors in words, and a tiny DOM builder (text only: no HTML from data).
"use strict";

(function () {
  const TOKEN_KEY = "co.learnerToken";
  const body = document.body;

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function claims() {
    const raw = token();
    if (!raw) return null;
    try {
      const part = raw.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
    } catch (error) {
      return null;
    }
  }

  function signInUrl() {
    const next = location.pathname + location.search;
    return body.dataset.signInUrl + "?next=" + encodeURIComponent(next);
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    location.assign(body.dataset.signInUrl);
  }

  // Pages other than sign-in need a token that has not expired; without one, go and get one.
  function requireLearner() {
    const found = claims();
    if (!found || (found.exp && found.exp * 1000 < Date.now())) {
      sessionStorage.removeItem(TOKEN_KEY);
      location.replace(signInUrl());
      return null;
    }
    return found.sub;
  }

  class ApiError extends Error {
    constructor(status, envelope, retryAfter) {
      super(describe(status, envelope, retryAfter));
      this.status = status;
      this.code = envelope && envelope.error ? envelope.error.code : "";
      this.envelope = envelope;
    }
  }

  function describe(status, envelope, retryAfter) {
    const error = envelope && envelope.error ? envelope.error : null;
    let message = error && error.message ? error.message : "";
    if (error && error.fields) {
      const details = [];
      for (const [name, problems] of Object.entries(error.fields)) {
        details.push(name + ": " + (Array.isArray(problems) ? problems.join(" ") : JSON.stringify(problems)));
      }
      if (details.length) message += " (" + details.join("; ") + ")";
    }
    if (status === 429) {
      const seconds = retryAfter ? Number(retryAfter) : NaN;
      return "Too many requests: " + (Number.isFinite(seconds) ? "try again in " + seconds + " s." : "wait a moment and try again.") + (message ? " " + message : "");
    }
    if (status === 401) return "Your sign-in has expired: sign in again.";
    if (status === 404) return message || "Not found.";
    if (status === 409) return message || "That cannot be done in the current state.";
    if (status === 413) return message || "That is too large to send.";
    if (status === 0) return "The server cannot be reached: check your connection and try again.";
    if (status >= 500) return "The server had a problem (" + status + "); try again shortly.";
    return message || "The request failed (" + status + ").";
  }

  async function api(method, path, payload, extraHeaders) {
    const headers = { Accept: "application/json", Authorization: "Bearer " + token(), ...(extraHeaders || {}) };
    const init = { method, headers, credentials: "omit", cache: "no-store" };
    if (payload !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new ApiError(0, null, null);
    }
    let data = null;
    const text = await response.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (error) {
        data = null;
      }
    }
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
    }
    if (!response.ok) throw new ApiError(response.status, data, response.headers.get("Retry-After"));
    return { status: response.status, data };
  }

  // el("p", {class: "x", text: "y"}, child…): attributes, text content and children; never HTML.
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "on") for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function setStatus(node, text, kind) {
    node.textContent = text;
    node.classList.toggle("error", kind === "error");
    node.hidden = !text;
  }

  function json(value) {
    return JSON.stringify(value);
  }

  function initHeader(learner) {
    const who = document.getElementById("who-am-i");
    const button = document.getElementById("sign-out");
    if (learner && who) who.textContent = "Signed in as " + learner;
    if (learner && button) {
      button.hidden = false;
      button.addEventListener("click", signOut);
    }
  }

  const page = body.dataset.page;
  const learner = page === "sign-in" || page === "signed-in" ? claims() && claims().sub : requireLearner();
  initHeader(learner);

  window.CO = { TOKEN_KEY, api, ApiError, el, setStatus, json, learner, token, signOut };
})();
