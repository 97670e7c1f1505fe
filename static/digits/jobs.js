// Live job pages: a websocket brings new events; the REST API fills any gap by
// sequence number (after page load, after a reconnect), so nothing is lost.
(function () {
  "use strict";

  const STATUS_CLASSES = {
    // The colours of apps/core/templatetags/digits_ui.py STATUS_COLOURS (one scheme).
    queued: "text-bg-secondary", running: "text-bg-primary", done: "text-bg-success",
    error: "text-bg-danger", aborted: "text-bg-warning",
  };
  const LABELS = { queued: "Queued", running: "Running", done: "Done", error: "Error", aborted: "Aborted" };

  // A metric's name and unit as the server's pages write them (digits_ui.human_key,
  // whose words arrive in the page as #key-words): "val/accuracy" → "Validation accuracy".
  let keyWords = null;
  function humanKey(key) {
    if (keyWords === null) {
      const script = document.getElementById("key-words");
      keyWords = script ? JSON.parse(script.textContent) : { labels: {}, words: {}, units: {} };
    }
    if (keyWords.labels[key]) return keyWords.labels[key];
    const text = String(key).split(/[_/\s.-]+/).filter(Boolean)
      .map(function (w) { return keyWords.words[w.toLowerCase()] || w; }).join(" ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }
  function withUnit(key, text) {
    const unit = keyWords && keyWords.units[key];
    if (!unit) return text;
    return unit === "%" || unit === "°" ? text + unit : text + " " + unit;
  }

  function wsUrl(path) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + location.host + path;
  }

  // A connection that has not opened after this long is given up and tried again: a
  // load balancer or firewall that swallows packets would otherwise leave the page
  // waiting on the browser's own handshake timeout (minutes), never reconnecting.
  const OPEN_TIMEOUT_MS = 10000;

  function connect(path, onMessage, onOpen) {
    let delay = 500;
    function open() {
      const socket = new WebSocket(wsUrl(path));
      const opening = setTimeout(function () {
        if (socket.readyState === WebSocket.CONNECTING) socket.close();  // onclose retries
      }, OPEN_TIMEOUT_MS);
      socket.onopen = function () { clearTimeout(opening); delay = 500; if (onOpen) onOpen(); };
      socket.onmessage = function (msg) { onMessage(JSON.parse(msg.data)); };
      socket.onclose = function (ev) {
        clearTimeout(opening);
        // 4401 not logged in, 4403 foreign origin, 4404 no such job (or not yours):
        // asking again will not change the answer.
        if (ev.code >= 4400 && ev.code < 4500) return;
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 10000);
      };
    }
    open();
  }

  function setStatus(root, status, text) {
    root.querySelectorAll("[data-role=status]").forEach(function (badge) {
      badge.className = "badge job-status status-" + status + " " + (STATUS_CLASSES[status] || "");
      badge.textContent = LABELS[status] || status;
    });
    if (text !== undefined) {
      // Not "Done Done": a text that only repeats the badge is left out.
      const shown = String(text).toLowerCase() === String(LABELS[status] || status).toLowerCase() ? "" : text;
      root.querySelectorAll("[data-role=status-text]").forEach(function (el) { el.textContent = shown; });
    }
    if (status !== "running" && status !== "queued") {
      root.querySelectorAll("[data-role=abort-form]").forEach(function (el) { el.remove(); });
    }
  }

  function setProgress(root, fraction, status) {
    const pct = Math.round(fraction * 100);
    root.querySelectorAll("[data-role=progress]").forEach(function (bar) {
      bar.style.width = pct + "%";
      bar.textContent = pct + "%";
      bar.parentElement.setAttribute("aria-valuenow", pct);
      bar.classList.toggle("progress-bar-animated", status === "running");
      bar.classList.toggle("progress-bar-striped", status === "running");
    });
  }

  // How far the browser's clock is ahead of the server's, from the server's time when it
  // made the page (data-now): the browser's time then is when the response's first byte
  // came (Django sends a page once it is whole), not when this script runs, which on a slow
  // machine can be seconds later (and would make every age that much too young).
  function clockSkew(serverNow) {
    if (!serverNow) return 0;
    const nav = performance.getEntriesByType ? performance.getEntriesByType("navigation")[0] : null;
    const received = nav && nav.responseStart > 0 ? performance.timeOrigin + nav.responseStart : Date.now();
    return received - Date.parse(serverNow);
  }

  // The worker's last heartbeat, as an age that ticks every second: the server's clock
  // corrects the browser's; the time of the beat is read again with the job's other facts.
  function followHeartbeat(root) {
    const cell = root.querySelector("[data-role=heartbeat]");
    if (!cell) return function () {};
    const skew = clockSkew(cell.dataset.now);
    const staleAfter = Number(cell.dataset.staleAfter || 0);
    function show() {
      if (!cell.dataset.at || cell.closest("tr").hidden) return;
      const age = Math.max(0, Math.floor((Date.now() - skew - Date.parse(cell.dataset.at)) / 1000));
      const stale = staleAfter > 0 && age > staleAfter;
      cell.textContent = age + " s ago" + (stale ? " (the worker stopped responding)" : "");
      cell.classList.toggle("text-danger", stale);
    }
    show(); // now: the age in the page was the server's, and the script may come late
    setInterval(show, 1000);
    return function (job) {
      if (job.heartbeat_at) cell.dataset.at = job.heartbeat_at;
      cell.closest("tr").hidden = !(job.status === "running" && cell.dataset.at);
      show();
    };
  }

  // The job page's facts that change without an event of their own: worker, attempts,
  // place in the queue, the heartbeat (read again from the REST detail on each status
  // change, and every few seconds while the job waits in its queue or runs).
  function followFacts(root) {
    const url = root.dataset.detailUrl;
    if (!url) return function () {};
    const heartbeat = followHeartbeat(root);
    let timer = null;
    async function refresh() {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      const job = await response.json();
      root.querySelectorAll("[data-role=worker]").forEach(function (el) { el.textContent = job.worker || "—"; });
      root.querySelectorAll("[data-role=attempts]").forEach(function (el) { el.textContent = job.attempts; });
      root.querySelectorAll("[data-role=queue-position]").forEach(function (el) {
        el.textContent = job.queue_position ? " · position " + job.queue_position + " in the queue" : "";
      });
      heartbeat(job);
      clearTimeout(timer);
      if (job.status === "queued" || job.status === "running") timer = setTimeout(refresh, 5000);
    }
    const position = root.querySelector("[data-role=queue-position]");
    const row = root.querySelector("[data-role=heartbeat-row]");
    if ((position && position.textContent) || (row && !row.hidden)) timer = setTimeout(refresh, 5000);
    return refresh;
  }

  // --- one job -----------------------------------------------------------------
  function jobPage(root) {
    let lastSeq = 0;
    let status = null;
    let backfilling = null;
    const log = root.querySelector("[data-role=log]");
    const metrics = root.querySelector("[data-role=metrics] tbody");
    const eta = root.querySelector("[data-role=eta]");
    const error = root.querySelector("[data-role=error]");
    const refreshFacts = followFacts(root);

    function apply(ev) {
      if (ev.seq <= lastSeq) return; // already shown
      lastSeq = ev.seq;
      root.dataset.lastSeq = lastSeq;
      // Other scripts on the page (charts) follow the same stream.
      root.dispatchEvent(new CustomEvent("digits:event", { detail: ev }));
      const d = ev.data;
      if (ev.type === "status") {
        if (d.status !== status) refreshFacts();
        status = d.status;
        setStatus(root, d.status, d.text);
        if (d.error) { error.textContent = d.error; error.classList.remove("d-none"); }
        if (d.status === "done") setProgress(root, 1, "done");
        // Pages that show the job's product (a dataset) reload once it is finished.
        if (root.dataset.reloadOnFinish && ["done", "error", "aborted"].includes(d.status)) {
          root.dataset.reloadOnFinish = "";
          setTimeout(function () { location.reload(); }, 300);
        }
        else if (d.status !== "running") setProgress(root, currentProgress(), d.status);
        if (["done", "error", "aborted"].includes(d.status)) eta.textContent = "";
      } else if (ev.type === "progress") {
        setProgress(root, d.progress, status || "running");
        eta.textContent = d.eta_seconds != null ? "· ETA " + d.eta_seconds + " s" : "";
        if (d.text) root.querySelector("[data-role=status-text]").textContent = d.text;
      } else if (ev.type === "log") {
        const line = document.createElement("div");
        line.className = "level-" + (d.level || "info");
        line.textContent = ev.time.substring(11, 19) + " " + d.message;
        log.appendChild(line);
        log.scrollTop = log.scrollHeight;
      } else if (ev.type === "metric") {
        let row = metrics.querySelector('[data-series="' + CSS.escape(d.series) + '"]');
        if (!row) {
          row = document.createElement("tr");
          row.dataset.series = d.series;
          row.innerHTML = "<th></th><td></td><td class='text-muted'></td>";
          row.children[0].textContent = humanKey(d.series);
          metrics.appendChild(row);
        }
        row.children[1].textContent = withUnit(d.series, String(Number(Number(d.value).toPrecision(4))));
        row.children[2].textContent = "step " + d.step;
      }
    }

    function currentProgress() {
      const bar = root.querySelector("[data-role=progress]");
      return bar ? parseFloat(bar.style.width) / 100 : 0;
    }

    // A page that reads the metrics as downsampled series (the model page's charts) sets
    // data-backfill-types: the first catch-up skips the other types (a long run's
    // metrics are far too many events); "digits:backfilled" says it is done.
    let firstTypes = root.dataset.backfillTypes || "";
    function backfill() {
      if (backfilling) return backfilling;
      const url = root.dataset.eventsUrl;
      const types = firstTypes;
      backfilling = (async function () {
        for (;;) {
          const query = "?after=" + lastSeq + (types ? "&type=" + types : "");
          const response = await fetch(url + query, { credentials: "same-origin" });
          if (!response.ok) break;
          const page = await response.json();
          page.events.forEach(apply);
          if (!page.events.length || lastSeq >= page.last_seq) {
            if (types) lastSeq = Math.max(lastSeq, page.last_seq);
            break;
          }
        }
        if (types) {
          firstTypes = "";
          root.dispatchEvent(new CustomEvent("digits:backfilled", { detail: { lastSeq: lastSeq } }));
        }
      })().finally(function () { backfilling = null; });
      return backfilling;
    }

    connect(root.dataset.ws, function (msg) {
      // "backfill": this socket fell behind (or the server lost messages): fetch
      // from the last seq shown; newer messages follow on the socket.
      if (msg.type === "hello" || msg.type === "backfill") {
        backfill();
      } else if (msg.type === "events") {
        const first = msg.events.length ? msg.events[0].seq : lastSeq + 1;
        if (first > lastSeq + 1 || backfilling) {
          backfill().then(function () { msg.events.forEach(apply); });
        } else {
          msg.events.forEach(apply);
        }
      }
    });
  }

  // --- job list ----------------------------------------------------------------
  function jobList(table) {
    // After a "backfill" hint (updates were dropped for this tab) or a reconnect (not
    // the first connection: what changed meanwhile was never pushed), the rows shown
    // are read again from the REST API, by id (a filtered or later page too).
    async function refresh() {
      const ids = Array.from(table.querySelectorAll("tr[data-job]")).map(function (tr) { return tr.dataset.job; });
      const query = ids.length ? "?id=" + ids.join(",") : "";
      const response = await fetch("/api/v1/jobs/" + query, { credentials: "same-origin" });
      if (!response.ok) return;
      (await response.json()).results.forEach(function (job) { update(job, false); });
    }
    let connected = false;
    function resync() {
      if (connected) refresh();
      connected = true;
      table.dataset.live = "open";  // the socket is up (what a test waits for)
    }

    connect(table.dataset.ws, function (msg) {
      if (msg.type === "backfill") refresh();
      if (msg.type === "job") update(msg.job, table.dataset.prepend !== "false");
    }, resync);

    function update(job, prepend) {
      let row = table.querySelector('tr[data-job="' + job.id + '"]');
      if (!row && !prepend) return;  // a filtered or later page
      if (!row) {
        const empty = table.querySelector("tr.empty");
        if (empty) empty.remove();
        row = document.createElement("tr");
        row.dataset.job = job.id;
        row.innerHTML =
          "<td></td><td><a></a></td><td></td>" +
          "<td><span class='badge job-status' data-role='status'></span> <small class='text-muted' data-role='status-text'></small></td>" +
          "<td><div class='progress'><div class='progress-bar' data-role='progress'></div></div></td><td></td><td>just now</td>";
        row.children[0].textContent = job.id;
        row.querySelector("a").textContent = job.name;
        row.querySelector("a").href = "/jobs/" + job.id + "/";
        row.children[2].textContent = job.kind;
        table.querySelector("tbody").prepend(row);
      }
      setStatus(row, job.status, job.status_text);
      setProgress(row, job.progress, job.status);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    const job = document.getElementById("job");
    if (job) jobPage(job);
    const list = document.getElementById("job-list");
    if (list) jobList(list);
  });
})();
