/* Live dispatch pages: ticking SLA countdowns, and server-sent events that keep the
 * engineer's list (#tasks) and the dispatcher's board (#board) current.
 * The pages work without this file: it only saves a reload. Wording and markup
 * follow web/formatting.py and templates/_task_card.html. */
(function () {
  "use strict";

  var skewMs = 0; // server clock minus this device's clock

  function serverNow() {
    return Date.now() + skewMs;
  }

  function countdown(dueIso) {
    var ms = Date.parse(dueIso) - serverNow();
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var hours = Math.floor(minutes / 60);
    var rest = minutes % 60;
    var days = Math.floor(hours / 24);
    hours = hours % 24;
    var text;
    if (days) {
      text = days + " d " + hours + " h";
    } else if (hours) {
      text = hours + " h " + (rest < 10 ? "0" : "") + rest + " min";
    } else {
      text = rest + " min";
    }
    return { text: ms >= 0 ? "in " + text : text + " overdue", ms: ms };
  }

  function tick() {
    var items = document.querySelectorAll(".countdown[data-due]");
    for (var i = 0; i < items.length; i++) {
      var c = countdown(items[i].getAttribute("data-due"));
      items[i].textContent = c.text;
      items[i].classList.toggle("overdue", c.ms < 0);
      items[i].classList.toggle("soon", c.ms >= 0 && c.ms < 30 * 60000);
    }
  }

  function clock(iso, zone) {
    try {
      return new Intl.DateTimeFormat("en-GB", {
        hour: "2-digit", minute: "2-digit", hour12: false, timeZone: zone
      }).format(new Date(iso));
    } catch (e) {
      return iso.slice(11, 16);
    }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function label(value) {
    return String(value).replace(/_/g, " ");
  }

  /* The engineer's card, as templates/_task_card.html renders it. */
  function card(t) {
    var li = el("li", "card task p" + t.priority + " risk-" + t.risk);
    li.id = "task-" + t.id;
    li.setAttribute("data-id", t.id);
    li.setAttribute("data-due", t.due);
    var a = el("a", "task-link");
    a.href = "/my/tasks/" + t.id;
    var head = el("span", "task-head");
    var prio = el("span", "prio", "P" + t.priority);
    prio.title = "Priority " + t.priority;
    head.appendChild(prio);
    head.appendChild(document.createTextNode(" "));
    head.appendChild(el("strong", "terminal", t.terminal_id));
    head.appendChild(document.createTextNode(" "));
    head.appendChild(el("span", "tag state", label(t.state)));
    a.appendChild(head);
    a.appendChild(el("span", "task-title", t.title));
    a.appendChild(el("span", "task-where", t.site_name + " · " + t.address));
    var due = el("span", "task-due");
    due.appendChild(el("span", "due-label", t.due_label + " " + clock(t.due, t.site_timezone)));
    due.appendChild(document.createTextNode(" "));
    var c = el("span", "countdown");
    c.setAttribute("data-due", t.due);
    due.appendChild(c);
    a.appendChild(due);
    li.appendChild(a);
    return li;
  }

  function sortList(list) {
    var items = Array.prototype.slice.call(list.querySelectorAll("li.task"));
    items.sort(function (x, y) {
      return Date.parse(x.getAttribute("data-due")) - Date.parse(y.getAttribute("data-due"));
    });
    var empty = document.getElementById("no-tasks");
    items.forEach(function (item) { list.insertBefore(item, empty); });
    if (empty) { empty.hidden = items.length > 0; }
  }

  function setText(root, selector, text) {
    var node = root.querySelector(selector);
    if (node) { node.textContent = text; }
  }

  function status(text) {
    var live = document.getElementById("live");
    if (live) { live.setAttribute("data-state", text); }
    var badge = document.getElementById("live-state");
    if (!badge && live) {
      badge = el("span", "live-state");
      badge.id = "live-state";
      live.insertBefore(badge, live.firstChild);
    }
    if (badge) { badge.textContent = text + " "; }
  }

  /* Engineer: insert, replace or remove a card. */
  function onMine(list, t) {
    var existing = document.getElementById("task-" + t.id);
    if (t.removed) {
      if (existing) { existing.parentNode.removeChild(existing); }
    } else {
      var fresh = card(t);
      fresh.classList.add("fresh");
      if (existing) {
        existing.parentNode.replaceChild(fresh, existing);
      } else {
        list.appendChild(fresh);
      }
    }
    sortList(list);
    tick();
  }

  /* Dispatcher: update what the card shows; a task not on the page asks for a refresh. */
  function onBoard(list, t) {
    var existing = document.getElementById("task-" + t.id);
    if (!existing) {
      if (!t.removed) {
        var notice = document.getElementById("board-notice");
        if (!notice) {
          notice = el("p", "note");
          notice.id = "board-notice";
          notice.setAttribute("role", "status");
          var link = el("a", "", "New tasks: refresh the board");
          link.href = window.location.pathname + window.location.search;
          notice.appendChild(link);
          list.parentNode.insertBefore(notice, list);
        }
      }
      return;
    }
    if (t.removed) {
      existing.parentNode.removeChild(existing);
      return;
    }
    existing.className = "card task fresh p" + t.priority + " risk-" + t.risk;
    existing.setAttribute("data-due", t.due);
    setText(existing, ".state", label(t.state));
    setText(existing, ".risk", label(t.risk));
    var risk = existing.querySelector(".risk");
    if (risk) { risk.className = "tag risk risk-" + t.risk; }
    setText(existing, ".task-title", t.title);
    setText(existing, ".task-engineer", t.engineer_name || "No engineer yet");
    setText(existing, ".due-label", t.due_label + " " + clock(t.due, t.site_timezone));
    var c = existing.querySelector(".countdown");
    if (c) { c.setAttribute("data-due", t.due); }
    tick();
  }

  /* Dispatcher: a lock alarm raised or acknowledged (dispatchers' boards only). */
  function onAlarm(a) {
    var box = document.getElementById("lock-alarms");
    var feed = document.getElementById("alarm-feed");
    var count = document.getElementById("alarm-count");
    if (!box || !feed || !count) { return; }
    var existing = document.getElementById("feed-alarm-" + a.id);
    var open = parseInt(count.textContent, 10) || 0;
    if (a.state === "open" && !existing) {
      var item = el("li", "fresh sev-" + a.severity);
      item.id = "feed-alarm-" + a.id;
      item.appendChild(el("strong", "", a.label));
      item.appendChild(document.createTextNode(" · " + a.terminal_id + " · " + a.message));
      feed.insertBefore(item, feed.firstChild);
      open += 1;
    } else if (a.state !== "open" && existing) {
      existing.parentNode.removeChild(existing);
      open = Math.max(0, open - 1);
    }
    count.textContent = String(open);
    box.classList.toggle("quiet", open === 0);
  }

  function connect(list) {
    var url = list.getAttribute("data-stream");
    var serverTime = list.getAttribute("data-server-now");
    if (serverTime) { skewMs = Date.parse(serverTime) - Date.now(); }
    if (!url || !window.EventSource) { return; }
    var board = list.hasAttribute("data-board");
    var source = new EventSource(url);
    source.addEventListener("hello", function (e) {
      var hello = JSON.parse(e.data);
      skewMs = Date.parse(hello.server_time) - Date.now();
      list.setAttribute("data-live", "1");
      status("Live.");
    });
    source.addEventListener("task", function (e) {
      var t = JSON.parse(e.data);
      if (board) { onBoard(list, t); } else { onMine(list, t); }
    });
    source.addEventListener("alarm", function (e) { onAlarm(JSON.parse(e.data)); });
    source.addEventListener("reload", function () { window.location.reload(); });
    source.onerror = function () {
      list.removeAttribute("data-live");
      status("Reconnecting…");
    };
  }

  /* "Share my location": the phone's position becomes the start of travel estimates. */
  function shareLocation() {
    var box = document.getElementById("share-location");
    if (!box || !navigator.geolocation || !window.fetch) { return; }
    box.hidden = false;
    var button = document.getElementById("share-location-button");
    var note = document.getElementById("share-location-status");
    button.addEventListener("click", function () {
      note.textContent = "Finding you…";
      navigator.geolocation.getCurrentPosition(function (position) {
        fetch(box.getAttribute("data-url"), {
          method: "PUT",
          credentials: "same-origin",
          headers: {
            "Content-Type": "application/json",
            "X-CSRF-Token": box.getAttribute("data-csrf")
          },
          body: JSON.stringify({
            latitude: position.coords.latitude,
            longitude: position.coords.longitude
          })
        }).then(function (response) {
          note.textContent = response.ok ? "Location shared." : "Could not share the location.";
        }, function () {
          note.textContent = "No connection; try again.";
        });
      }, function () {
        note.textContent = "The phone did not give a location.";
      }, { enableHighAccuracy: false, timeout: 15000, maximumAge: 60000 });
    });
  }

  function start() {
    var list = document.getElementById("tasks") || document.getElementById("board");
    if (list) { connect(list); }
    shareLocation();
    tick();
    window.setInterval(tick, 5000);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
