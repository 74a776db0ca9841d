// Read rights: ask before revoking or cancelling, and count the email addresses as they are typed.
// Progressive enhancement only; every form works without it.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("id_emails");
  const out = document.getElementById("email-count");
  if (!box || !out) return;
  const update = () => {
    const n = box.value.split(/[\s,;]+/).filter((part) => part.length > 0).length;
    out.hidden = n === 0;
    const text = window.ngettext
      ? window.ngettext("%(count)s address", "%(count)s addresses", n)
      : n === 1
        ? "%(count)s address"
        : "%(count)s addresses";
    out.textContent = text.replace("%(count)s", n.toLocaleString(document.documentElement.lang));
  };
  box.addEventListener("input", update);
  update();
});
