// My devices: keep the selection count live without reloading. The page works without this
// file: the "Update selection" button sends the ticked boxes instead.
(function () {
  "use strict";
  const form = document.getElementById("selection-form");
  if (!form || !window.fetch) return;
  document.documentElement.classList.add("js");
  const counter = document.getElementById("selected-count");
  const token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const table = document.getElementById("device-table");

  // One change at a time, in the order they were made: two boxes ticked quickly would otherwise
  // race, and the answer that arrives last (perhaps the first change's "1") would be shown.
  let queue = Promise.resolve();

  function send(action, ids) {
    const body = new URLSearchParams();
    body.append("action", action);
    ids.forEach((id) => body.append("device", id));
    return fetch(form.getAttribute("action"), {
      method: "POST",
      headers: { "X-CSRFToken": token, Accept: "application/json" },
      body: body,
      credentials: "same-origin",
    }).then((response) => response.json().then((data) => ({ ok: response.ok, data: data })));
  }

  function post(action, ids) {
    const result = queue.then(() => send(action, ids));
    queue = result.catch(() => undefined);
    return result;
  }

  function show(result) {
    if (result.ok && counter) {
      counter.textContent = result.data.selected.toLocaleString(document.documentElement.lang);
      const clear = form.querySelector("button[value=clear]");
      if (clear) clear.disabled = result.data.selected === 0;
    } else if (result.data && result.data.error) {
      window.alert(result.data.error);
    }
  }

  function rowBoxes() {
    return table ? Array.from(table.querySelectorAll("input.row-select")) : [];
  }

  rowBoxes().forEach((box) => {
    box.addEventListener("change", () => {
      box.closest("tr").classList.toggle("selected", box.checked);
      post(box.checked ? "select" : "deselect", [box.value]).then(show);
    });
  });

  // A "select all on this page" box in the header.
  const head = table && table.querySelector("thead th.select-col");
  if (head && rowBoxes().length) {
    const all = document.createElement("input");
    all.type = "checkbox";
    const label = "Select all devices on this page";
    all.setAttribute("aria-label", window.gettext ? window.gettext(label) : label);
    all.checked = rowBoxes().every((b) => b.checked);
    head.appendChild(all);
    all.addEventListener("change", () => {
      const boxes = rowBoxes();
      boxes.forEach((b) => {
        b.checked = all.checked;
        b.closest("tr").classList.toggle("selected", all.checked);
      });
      post(all.checked ? "select" : "deselect", boxes.map((b) => b.value)).then(show);
    });
  }

  // Changing the page size searches again.
  const perPage = document.getElementById("per-page");
  if (perPage) perPage.addEventListener("change", () => perPage.form.requestSubmit());
})();
