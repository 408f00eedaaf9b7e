// The invitation token is the link's fragment: browsers never send it to a server, so it
// stays out of every access log. Copy it into the form, then drop it from the address bar
// (and from history) so it is not left on screen.
(function () {
  var token = window.location.hash.replace(/^#/, "");
  var label = document.getElementById("invite-code");
  var field = label && label.querySelector("input[name=token]");
  if (!field) return;
  if (token) {
    field.value = decodeURIComponent(token);
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  if (field.value) label.hidden = true;
})();
