// The labelling page: keyboard-first, every label saved the moment it is made.
// Generated text is untrusted: it only ever reaches the page through textContent.
"use strict";

(function () {
  const app = document.getElementById("label-app");
  if (!app) return;
  const step = app.dataset.step;
  const api = (path) => path + "?step=" + encodeURIComponent(step);
  const $ = (id) => document.getElementById(id);

  let task = null;       // {mode, criteria, items, progress}
  let index = 0;         // the item shown
  let active = 0;        // the highlighted criterion (pointwise)
  let pending = {};      // ratings of the shown item not yet saved
  let pendingOrder = []; // the order they were given, for undo
  let queue = Promise.resolve(); // keys are handled one after another, in order

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function say(text, isError) {
    const node = $("message");
    node.textContent = text;
    node.classList.toggle("error", Boolean(isError));
  }

  async function call(method, path, body) {
    const response = await fetch(api(path), {
      method: method,
      headers: body === undefined ? {} : {"Content-Type": "application/json"},
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
    return data;
  }

  // -- showing ---------------------------------------------------------------------------
  function current() { return task.items[index]; }

  function enter(i) {
    index = Math.max(0, Math.min(task.items.length - 1, i));
    const label = current().label;
    pending = task.mode === "pointwise" && label ? Object.assign({}, label.criteria) : {};
    pendingOrder = [];
    active = 0;
    render();
  }

  function firstUnlabelled(from) {
    for (let k = 0; k < task.items.length; k++) {
      const i = (from + k) % task.items.length;
      if (!task.items[i].label) return i;
    }
    return -1;
  }

  function renderProgress() {
    const p = task.progress;
    $("progress").max = Math.max(1, p.total);
    $("progress").value = p.done;
    $("progress-text").textContent = p.done + " / " + p.total + " labelled";
    const a = p.agreement;
    let text = "";
    if (task.mode === "pointwise") {
      text = a.n < 3 || a.spearman === null ? "agreement with judge: needs 3 labels"
        : "agreement with judge: Spearman " + a.spearman.toFixed(2) + ", mean |human − judge| " + a.mae.toFixed(2) + " (n=" + a.n + ")";
    } else {
      text = a.rate === null ? "agreement with judge: no decided pair yet"
        : "judge agrees on " + a.agree + " of " + a.n + " (" + Math.round(100 * a.rate) + "%)" + (a.ties ? ", " + a.ties + " ties left out" : "");
    }
    $("agreement").textContent = text;
  }

  function render() {
    renderProgress();
    if (!task.items.length) { say("The sample is empty: no row of this step has a judge score."); return; }
    const item = current();
    $("position").textContent = (index + 1) + " / " + task.items.length;
    $("item-key").textContent = item.key;
    $("item-state").textContent = item.label ? "labelled" : "not labelled yet";
    $("item-state").className = item.label ? "done" : "todo";
    const texts = $("texts");
    texts.replaceChildren();
    for (const [name, value] of item.texts) {
      const box = el("div", "text");
      box.append(el("div", "col", name), el("div", "body", value));
      texts.append(box);
    }
    if (task.mode === "pointwise") renderCriteria(); else renderPair(item);
  }

  function renderCriteria() {
    const holder = $("criteria");
    holder.replaceChildren();
    task.criteria.forEach((criterion, c) => {
      const row = el("div", "criterion" + (c === active ? " active" : ""));
      row.dataset.criterion = criterion.name;
      row.append(el("div", "question", criterion.question));
      const buttons = el("div", "scale");
      for (let n = 1; n <= 5; n++) {
        const anchor = criterion.anchors[n - 1] || "";
        const button = el("button", pending[criterion.name] === n ? "chosen" : "", anchor ? n + " · " + anchor : String(n));
        button.type = "button";
        button.addEventListener("click", () => { active = c; enqueue(() => rate(n)); });
        buttons.append(button);
      }
      row.append(buttons);
      holder.append(row);
    });
  }

  function renderPair(item) {
    $("pair").hidden = false;
    $("pair-buttons").hidden = false;
    $("left-text").textContent = item.left.text;
    $("right-text").textContent = item.right.text;
    const preference = item.label ? item.label.preference : null;
    $("left").classList.toggle("chosen", preference !== null && preference === item.left.side);
    $("right").classList.toggle("chosen", preference !== null && preference === item.right.side);
    $("left").classList.toggle("tie", preference === "tie");
    $("right").classList.toggle("tie", preference === "tie");
  }

  // -- labelling -------------------------------------------------------------------------
  async function save(body) {
    const item = current();
    try {
      const data = await call("POST", "/api/label", Object.assign({key: item.key}, body));
      item.label = data.label;
      task.progress = data.progress;
      $("saved").textContent = "saved " + item.key;
      say("");
    } catch (error) {
      say("not saved: " + error.message, true);
      render();
      return false;
    }
    const next = firstUnlabelled(index + 1);
    if (next === -1) { say("Every row of the sample is labelled: run `synthwright calibrate` on it."); enter(index); }
    else enter(next);
    return true;
  }

  async function rate(n) {
    const criterion = task.criteria[active];
    pending[criterion.name] = n;
    pendingOrder.push(criterion.name);
    const missing = task.criteria.findIndex((c) => pending[c.name] === undefined);
    if (missing === -1) return save({criteria: Object.assign({}, pending)});
    active = task.criteria.findIndex((c, k) => k > active && pending[c.name] === undefined);
    if (active === -1) active = missing;
    render();
  }

  async function pick(choice) {
    const item = current();
    const preference = choice === "tie" ? "tie" : item[choice].side;
    return save({preference: preference});
  }

  async function undo() {
    if (pendingOrder.length) { // ratings not saved yet: take back the last one
      const name = pendingOrder.pop();
      delete pending[name];
      active = task.criteria.findIndex((c) => c.name === name);
      render();
      return;
    }
    try {
      const data = await call("POST", "/api/undo", {});
      task.progress = data.progress;
      if (data.key === null) { say("Nothing to undo."); renderProgress(); return; }
      const i = task.items.findIndex((item) => item.key === data.key);
      if (i !== -1) { task.items[i].label = data.label; enter(i); }
      say(data.label ? "undone: the earlier label of " + data.key + " is back" : "undone: " + data.key + " is unlabelled again");
    } catch (error) {
      say("undo failed: " + error.message, true);
    }
  }

  function enqueue(action) { queue = queue.then(action).catch((error) => say(String(error), true)); }

  document.addEventListener("keydown", (event) => {
    if (!task || event.altKey || event.metaKey) return;
    const undoKey = event.key === "u" || event.key === "Backspace" || (event.ctrlKey && event.key === "z");
    if (event.ctrlKey && !undoKey) return;
    let action = null;
    if (undoKey) action = undo;
    else if (event.key === "ArrowRight") action = () => enter(index + 1);
    else if (event.key === "ArrowLeft") action = () => enter(index - 1);
    else if (task.mode === "pointwise" && /^[1-5]$/.test(event.key)) { const n = Number(event.key); action = () => rate(n); }
    else if (task.mode === "pointwise" && event.key === "ArrowDown") action = () => { active = Math.min(task.criteria.length - 1, active + 1); render(); };
    else if (task.mode === "pointwise" && event.key === "ArrowUp") action = () => { active = Math.max(0, active - 1); render(); };
    else if (task.mode === "pairwise" && event.key === "1") action = () => pick("left");
    else if (task.mode === "pairwise" && event.key === "2") action = () => pick("right");
    else if (task.mode === "pairwise" && event.key === "0") action = () => pick("tie");
    if (action === null) return;
    event.preventDefault();
    enqueue(action);
  });

  for (const button of document.querySelectorAll("#pair-buttons button")) {
    button.addEventListener("click", () => enqueue(() => pick(button.dataset.pick)));
  }

  call("GET", "/api/label").then((data) => {
    task = data;
    const start = firstUnlabelled(0);
    enter(start === -1 ? 0 : start);
    document.body.dataset.ready = "1";
  }).catch((error) => say("could not load the sample: " + error.message, true));
})();
