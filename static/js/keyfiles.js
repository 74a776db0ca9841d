// Download file: the file arrives as a download, so the page stays where it is. Before the form
// is sent this script gives it a fresh token; the file's response sets a cookie carrying the
// token, the number of devices and the file's name. When it appears the page says the file was
// made, empties the password boxes and clears old errors. The selection is kept on the server.
(function () {
  "use strict";
  const form = document.getElementById("download-form");
  if (!form || !window.crypto || !window.crypto.getRandomValues) return;
  const notice = form.querySelector("input[name=notice]");
  const status = document.getElementById("download-made");
  const COOKIE = "kamkeys_download_made";
  const path = form.getAttribute("data-path");
  let timer = null;

  function token() {
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function readCookie() {
    const prefix = COOKIE + "=";
    const found = document.cookie.split("; ").find((c) => c.startsWith(prefix));
    if (!found) return null;
    let value = found.slice(prefix.length);
    if (value.startsWith('"')) value = value.slice(1, -1);
    const parts = value.split(".");
    if (parts.length < 3) return null;
    return { token: parts[0], count: parseInt(parts[1], 10), name: parts.slice(2).join(".") };
  }

  function forgetCookie() {
    document.cookie = COOKIE + "=; Max-Age=0; Path=" + path + "; SameSite=Strict";
  }

  function say(made) {
    const lang = document.documentElement.lang || "en";
    const template = window.ngettext
      ? window.ngettext(
          "The file %(name)s was made with the keys of %(count)s device.",
          "The file %(name)s was made with the keys of %(count)s devices.",
          made.count
        )
      : made.count === 1
        ? "The file %(name)s was made with the keys of %(count)s device."
        : "The file %(name)s was made with the keys of %(count)s devices.";
    const text = template
      .replace("%(name)s", made.name)
      .replace("%(count)s", made.count.toLocaleString(lang));
    status.replaceChildren();
    const item = document.createElement("li");
    item.className = "message message-success";
    item.textContent = text;
    status.appendChild(item);
    status.hidden = false;
  }

  function clearForm() {
    form.querySelectorAll("input[type=password]").forEach((box) => {
      box.value = "";
      box.removeAttribute("aria-invalid");
    });
    form.querySelectorAll(".errorlist, .warning").forEach((el) => el.remove());
    document.querySelectorAll("ul.messages:not(#download-made)").forEach((el) => el.remove());
  }

  function watch(expected) {
    window.clearInterval(timer);
    let tries = 0;
    timer = window.setInterval(() => {
      tries += 1;
      const made = readCookie();
      if (made && made.token === expected) {
        window.clearInterval(timer);
        forgetCookie();
        say(made);
        clearForm();
      } else if (tries > 600) {
        window.clearInterval(timer); // the server answered with a page instead (errors)
      }
    }, 200);
  }

  form.addEventListener("submit", () => {
    const value = token();
    notice.value = value;
    status.hidden = true;
    watch(value);
  });
})();
