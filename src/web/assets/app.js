// habitat-migrate's page script: drag and drop, the cell editor, confirmations, and the progress
// of a run. Nothing else; every rule is checked on the server by the same library as the command
// line.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Drop files onto the box: they go into the file input, and the form is sent.
  const drop = document.getElementById("drop");
  const input = document.getElementById("file-input");
  if (drop && input) {
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      input.files = e.dataTransfer.files;
      document.getElementById("upload").submit();
    });
  }

  // A form with data-confirm asks first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (e) => {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  }

  // A run in progress: its phase and counts, asked for twice a second; the page with the
  // outcome once it has ended.
  const progress = document.getElementById("progress");
  if (progress) {
    const count = (done, total) =>
      total != null ? `${done} of ${total} rows` : (done ? `${done} rows` : "");
    const poll = async () => {
      try {
        const response = await fetch(progress.dataset.poll);
        const now = await response.json();
        if (!now.running) {
          location.reload();
          return;
        }
        document.getElementById("phase").textContent = now.phase || "starting";
        document.getElementById("phase-count").textContent = count(now.done, now.total);
        document.getElementById("seconds").textContent = now.seconds;
        const list = document.getElementById("phases");
        list.replaceChildren(...now.phases.map((p) => {
          const li = document.createElement("li");
          li.className = p.finished ? "done" : "current";
          li.textContent = `${p.name} ${count(p.done, p.total)}`;
          return li;
        }));
      } catch (e) {
        // The server is busy or gone for a moment: ask again.
      }
      setTimeout(poll, 500);
    };
    setTimeout(poll, 500);
  }

  // The cell editor: click a cell, see its findings, change it, and it is checked again at once.
  const grid = document.getElementById("grid");
  const panel = document.getElementById("cell-panel");
  if (!grid || !panel) return;
  const where = document.getElementById("cell-where");
  const problems = document.getElementById("cell-problems");
  const value = document.getElementById("cell-value");
  const error = document.getElementById("cell-error");
  let cell = null;
  const open = (td) => {
    cell = td;
    where.textContent = td.dataset.place || `line ${td.dataset.line}, ${td.dataset.column}`;
    const tip = td.querySelector(".tip");
    problems.innerHTML = tip ? tip.innerHTML : "<p>No problem in this cell.</p>";
    value.value = td.dataset.value;
    error.textContent = "";
    panel.hidden = false;
    value.focus();
  };
  grid.addEventListener("click", (e) => {
    const td = e.target.closest("td.cell");
    if (td) open(td);
  });
  grid.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.target.matches("td.cell")) open(e.target);
  });
  document.getElementById("cell-close").addEventListener("click", () => { panel.hidden = true; });
  document.getElementById("cell-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!cell) return;
    const response = await fetch("/api/edit", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        file: grid.dataset.file,
        line: Number(cell.dataset.line),
        column: cell.dataset.column,
        value: value.value,
      }),
    });
    const answer = await response.json().catch(() => ({ ok: false, error: "no answer" }));
    if (answer.ok) {
      location.hash = cell.id;
      location.reload();
    } else {
      error.textContent = answer.error;
    }
  });
  // Arriving at a cell from the list: open it.
  if (location.hash.startsWith("#c")) {
    const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target && target.matches("td.cell.error, td.cell.warning")) target.focus();
  }
});
