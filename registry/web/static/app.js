// A little script where it makes the pages better: uploads with progress, feedback on the
// "Share with" field, copying an invitation, the Shares page's lists kept current. Tokens never reach it: it sends the session's
// cookie and the page's CSRF token, nothing else.
"use strict";

function upload(form) {
  const input = form.querySelector("input[type=file]");
  const bar = form.querySelector("progress");
  const status = form.querySelector("[role=status]");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = input.files[0];
    if (!file) return;
    const request = new XMLHttpRequest();
    request.open("PUT", form.dataset.target + encodeURIComponent(file.name));
    request.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    bar.hidden = false;
    request.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
    });
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) {
        status.textContent = `Uploaded ${file.name}.`;
        window.location.reload();
      } else {
        status.textContent = `The upload failed (${request.status}).`;
      }
    });
    request.addEventListener("error", () => { status.textContent = "The upload failed."; });
    status.textContent = `Uploading ${file.name}…`;
    request.send(file);
  });
}

function lookup(input) {
  const out = document.getElementById("recipient-found");
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const address = input.value.trim();
    if (!address.includes("@")) { out.textContent = ""; return; }
    timer = setTimeout(async () => {
      out.textContent = "Looking up " + address + "…";
      const response = await fetch("/lookup?address=" + encodeURIComponent(address));
      const found = response.ok ? await response.json() : { found: false };
      if (input.value.trim() !== address) return;
      out.textContent = found.found
        ? `Found at ${found.registry} (${found.domain}), ${found.partner ? "a partner" : "not a partner"}.`
        : `Not found${found.problem ? ": " + found.problem : ""}.`;
    }, 400);
  });
}

// The Shares page asks for itself again every few seconds (with the session's cookie, like
// any page) and swaps in its lists when they changed: a share that arrives shows without a
// reload. Pending shares are no change of any space, so there is no change stream to follow.
function follow(live) {
  const every = 2000;
  async function again() {
    try {
      const response = await fetch(live.dataset.follow, { headers: { Accept: "text/html" } });
      if (response.ok) {
        const fresh = new DOMParser()
          .parseFromString(await response.text(), "text/html")
          .getElementById(live.id);
        if (fresh && fresh.innerHTML !== live.innerHTML) live.innerHTML = fresh.innerHTML;
      }
    } finally {
      setTimeout(again, every);
    }
  }
  setTimeout(again, every);
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.querySelector("[data-follow]");
  if (live) follow(live);
  const form = document.getElementById("upload");
  if (form) upload(form);
  const recipient = document.getElementById("recipient");
  if (recipient) lookup(recipient);
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", () => {
      const field = document.getElementById(button.dataset.copy);
      field.select();
      if (navigator.clipboard) navigator.clipboard.writeText(field.value);
    });
  }
});
