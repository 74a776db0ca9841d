// kamkeys: progressive enhancement only; every page works without this file.
document.addEventListener("click", (event) => {
  // Close open dropdowns when clicking elsewhere.
  document.querySelectorAll("details.dropdown[open]").forEach((el) => {
    if (!el.contains(event.target)) el.removeAttribute("open");
  });
});

// Forms marked data-send-once (Confirm and assign, Accept, Complete registration, Register
// device, Remove device): a second click while the first is on its way sends nothing more. A
// double click ran the action twice and showed the second answer ("already had access"), not
// the first. Nothing is disabled, so the button clicked still sends its name and value.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.hasAttribute || !form.hasAttribute("data-send-once")) return;
  if (form.dataset.sent) {
    event.preventDefault();
    return;
  }
  form.dataset.sent = "1";
});

// Back to a page kept in the browser's memory: its forms may be sent again.
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  document.querySelectorAll("form[data-sent]").forEach((form) => {
    delete form.dataset.sent;
  });
});
