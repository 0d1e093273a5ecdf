// The review app's only script: draws the plotly figures embedded in the pages, keeps the
// reviewer's name and token in this browser, and sends decisions to the JSON API.
"use strict";

function drawPlots() {
  for (const el of document.querySelectorAll(".plot[data-figure]")) {
    const fig = JSON.parse(el.dataset.figure);
    Plotly.newPlot(el, fig.data, fig.layout, { responsive: true, displaylogo: false });
  }
}

function remembered(id) {
  const input = document.getElementById(id);
  input.value = localStorage.getItem("discovery." + id) || "";
  input.addEventListener("change", () => localStorage.setItem("discovery." + id, input.value.trim()));
  return input;
}

async function send(url, body, msg) {
  const token = document.getElementById("token").value.trim();
  const headers = { "Content-Type": "application/json" };
  if (token) headers["X-Discovery-Token"] = token;
  msg.textContent = "…";
  msg.className = "msg";
  const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  if (response.ok) {
    msg.textContent = "saved";
    window.location.reload();
    return;
  }
  let detail = response.statusText;
  try {
    const data = await response.json();
    detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
  } catch (_) { /* not JSON */ }
  msg.textContent = response.status + ": " + detail;
  msg.className = "msg error";
}

function reviewer(msg) {
  const name = document.getElementById("reviewer").value.trim();
  if (!name) {
    msg.textContent = "enter your name (top right) first";
    msg.className = "msg error";
  }
  return name;
}

function wireCandidate() {
  const form = document.getElementById("decide");
  if (!form) return;
  const msg = form.querySelector(".msg");
  for (const button of form.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => {
      const name = reviewer(msg);
      if (!name) return;
      const uid = encodeURIComponent(form.dataset.uid);
      const note = form.elements.note.value;
      const action = button.dataset.action;
      if (action === "comment") {
        send(`/api/candidates/${uid}/comment`, { reviewer: name, note }, msg);
      } else {
        send(`/api/candidates/${uid}/decision`, { decision: action, reviewer: name, note }, msg);
      }
    });
  }
}

function wireTable() {
  const bulk = document.getElementById("bulk");
  if (!bulk) return;
  const msg = bulk.querySelector(".msg");
  const picks = () => [...document.querySelectorAll("input.pick:checked")].map((el) => el.value);
  const count = () => { document.getElementById("bulk-count").textContent = picks().length; };
  document.addEventListener("change", (event) => {
    if (event.target.id === "pick-all") {
      for (const el of document.querySelectorAll("input.pick")) el.checked = event.target.checked;
    }
    count();
  });
  for (const button of bulk.querySelectorAll("button[data-decision]")) {
    button.addEventListener("click", () => {
      const uids = picks();
      if (!uids.length) { msg.textContent = "select candidates first"; return; }
      const name = reviewer(msg);
      if (!name) return;
      send("/api/decisions",
        { uids, decision: button.dataset.decision, reviewer: name, note: bulk.elements.note.value }, msg);
    });
  }
  const status = document.getElementById("export-status");
  const links = document.querySelectorAll("a.download");
  status.addEventListener("change", () => {
    for (const a of links) {
      a.href = `/export?format=${a.dataset.format}` + (status.value ? `&status=${status.value}` : "");
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  remembered("reviewer");
  remembered("token");
  drawPlots();
  wireCandidate();
  wireTable();
});
