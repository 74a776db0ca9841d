// accounts: live feedback on the password rules while typing. Progressive enhancement only:
// the form is checked again on the server when it is submitted.
(function () {
  "use strict";

  function csrfToken(form) {
    const input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function setup(box) {
    const form = box.closest("form");
    const input = form ? form.querySelector("input[name=password1]") : null;
    if (!input) return;
    const url = box.dataset.checkUrl;
    const feedback = document.getElementById("password-feedback");
    const nameInput = form.querySelector("input[name=name]");
    const emailInput = form.querySelector("input[autocomplete=username]");
    let timer = null;
    let latest = 0;

    function show(rules) {
      const messages = [];
      rules.forEach((rule) => {
        const item = document.getElementById(rule.id);
        if (!item) return;
        item.classList.toggle("ok", rule.ok);
        item.classList.toggle("fail", !rule.ok && input.value.length > 0);
        if (!rule.ok) messages.push(...rule.messages);
      });
      if (feedback) feedback.textContent = input.value ? messages.join(" ") : "";
    }

    function check() {
      const sent = ++latest;
      const body = new URLSearchParams();
      body.set("password", input.value);
      if (nameInput) body.set("name", nameInput.value);
      if (emailInput) body.set("email", emailInput.value);
      fetch(url, {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken(form), "Content-Type": "application/x-www-form-urlencoded" },
        body: body.toString(),
        credentials: "same-origin",
      })
        .then((response) => (response.ok ? response.json() : null))
        .then((data) => {
          if (data && data.rules && sent === latest) show(data.rules);
        })
        .catch(() => {});
    }

    function schedule() {
      window.clearTimeout(timer);
      timer = window.setTimeout(check, 300);
    }

    input.addEventListener("input", schedule);
    if (nameInput) nameInput.addEventListener("input", () => { if (input.value) schedule(); });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("#password-rules").forEach(setup);
  });
})();
