// Sign-in / sign-up page: posts JSON to /api/auth/*, the server sets an HttpOnly cookie.
(function () {
  "use strict";
  var mode = "login";
  var form = document.getElementById("auth-form");
  var error = document.getElementById("error");
  var submit = document.getElementById("submit");
  var hint = document.getElementById("hint");
  var password = document.getElementById("password");

  function setMode(next) {
    mode = next;
    document.getElementById("tab-login").setAttribute("aria-selected", String(next === "login"));
    document.getElementById("tab-signup").setAttribute("aria-selected", String(next === "signup"));
    submit.textContent = next === "login" ? "Sign in" : "Create account";
    password.setAttribute("autocomplete", next === "login" ? "current-password" : "new-password");
    hint.hidden = next === "login";
    error.textContent = "";
  }

  function target() {
    var next = new URLSearchParams(location.search).get("next") || "/ui/";
    return /^\/ui(\/|$)/.test(next) ? next : "/ui/";
  }

  document.getElementById("tab-login").addEventListener("click", function () { setMode("login"); });
  document.getElementById("tab-signup").addEventListener("click", function () { setMode("signup"); });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    fetch("/api/auth/" + mode, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({
        username: document.getElementById("username").value,
        password: password.value
      })
    }).then(function (response) {
      if (response.ok) { location.assign(target()); return null; }
      return response.json().then(function (body) {
        error.textContent = (body && body.error && body.error.message) || ("error " + response.status);
      });
    }).catch(function () {
      error.textContent = "The server cannot be reached.";
    }).finally(function () { submit.disabled = false; });
  });
})();
