/*
 * Extra behaviour for the Gradio UI (loaded through mount_gradio_app(head=...)).
 * Opening one of an answer's sources (<details class="source" value="<message id> <chunk id>">,
 * built by views.sources_html) tells POST /api/citations/open, which teaches the profile.
 * Same origin, so the session cookie goes along; each source is reported once per page.
 * "Export my data" downloads without navigating away.
 * "Yes, delete everything" (#confirm-delete-yes, Profile tab) calls DELETE /api/me, which erases
 * the account and ends the session, then goes to the sign-in page. (Gradio's js= hooks need
 * eval, which the CSP forbids.)
 */
(function () {
  "use strict";
  document.addEventListener("toggle", function (event) {
    var source = event.target;
    if (!(source instanceof HTMLDetailsElement) || !source.open) { return; }
    var ids = source.getAttribute("value") || "", space = ids.indexOf(" ");
    if (!source.matches("#chat details.source") || space < 1 || source.dataset.reported) { return; }
    source.dataset.reported = "1";
    fetch("/api/citations/open", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ message_id: ids.slice(0, space), chunk_id: ids.slice(space + 1) })
    }).catch(function () { /* learning is best effort */ });
  }, true);

  /* "Export my data" is a link to GET /api/me/export: mark it as a download so following it
     never starts a navigation (which could cut Gradio's event stream). */
  document.addEventListener("click", function (event) {
    var link = event.target instanceof Element && event.target.closest("a#export, #export a");
    if (link) { link.setAttribute("download", "chatbot-my-data.json"); }
  }, true);

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element && event.target.closest("#confirm-delete-yes");
    if (!button || button.disabled) { return; }
    button.disabled = true;
    fetch("/api/me", { method: "DELETE", credentials: "same-origin" }).then(function (r) {
      if (r.ok || r.status === 401) { window.location.assign("/login"); return; }
      button.disabled = false;
      window.alert("Your account could not be deleted (error " + r.status + "). Please try again.");
    }).catch(function () {
      button.disabled = false;
      window.alert("Your account could not be deleted: the server cannot be reached.");
    });
  });
})();
