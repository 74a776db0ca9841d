// kamkeys: progressive enhancement only; every page works without this file.
document.addEventListener("click", (event) => {
  // Close open dropdowns when clicking elsewhere.
  document.querySelectorAll("details.dropdown[open]").forEach((el) => {
    if (!el.contains(event.target)) el.removeAttribute("open");
  });
});
