// The dashboard's live figures. Every few seconds this asks the JSON view (data-live-url) for
// the figures and puts each one in place: in a campaign's panel, the elements marked
// data-live="<name>" get the text the server worded; the dialler's health, the list of live
// calls and the control buttons the campaign's status allows follow. No reload, no library.
// Without this script the page still shows everything and reloads itself (<noscript>).
(function () {
  "use strict";

  var root = document.getElementById("content-main");
  if (!root || !root.dataset.liveUrl || !window.fetch) {
    return;
  }
  var url = root.dataset.liveUrl;
  var seconds = parseInt(root.dataset.refreshSeconds, 10) || 5;
  var state = document.getElementById("live-state");
  // The page's words, translated by the template (data-text-*); English if they are missing.
  var words = {
    live: root.dataset.textLive || "Live: the figures update every " + seconds + " seconds.",
    stopped:
      root.dataset.textStopped ||
      "Live figures stopped: reload the page (you may need to log in again).",
    paused: root.dataset.textPaused || "Live figures paused: the server did not answer; trying again.",
    noCall: root.dataset.textNoCall || "No call is live.",
  };

  function setText(element, text) {
    if (element && element.textContent !== text) {
      element.textContent = text;
    }
  }

  function updatePanel(campaign) {
    var panel = document.getElementById("campaign-" + campaign.id);
    if (!panel) {
      return false;
    }
    Object.keys(campaign.figures).forEach(function (name) {
      panel.querySelectorAll('[data-live="' + name + '"]').forEach(function (element) {
        setText(element, campaign.figures[name]);
      });
    });
    var badge = panel.querySelector(".vs-status");
    if (badge) {
      badge.className = "vs-status " + campaign.status;
    }
    var done = panel.querySelector(".vs-progress-done");
    if (done) {
      done.style.width = campaign.progress_percent + "%";
    }
    panel.querySelectorAll("form[data-action]").forEach(function (form) {
      form.hidden = campaign.actions.indexOf(form.dataset.action) < 0;
    });
    return true;
  }

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function updateLiveCalls(calls) {
    var old = document.querySelector("#live-calls tbody");
    if (!old) {
      return;
    }
    var body = document.createElement("tbody");
    calls.forEach(function (call) {
      var row = document.createElement("tr");
      row.dataset.call = call.call_id;
      [call.campaign, call.contact, call.status, call.duration].forEach(function (text) {
        row.appendChild(cell(text));
      });
      body.appendChild(row);
    });
    if (!calls.length) {
      var none = document.createElement("tr");
      none.className = "vs-none";
      var td = cell(words.noCall);
      td.colSpan = 4;
      none.appendChild(td);
      body.appendChild(none);
    }
    old.parentNode.replaceChild(body, old);
  }

  function show(data) {
    setText(document.getElementById("figures-at"), data.at_text);
    var health = document.getElementById("dialler-health");
    if (health) {
      setText(health, data.health.text);
      health.classList.toggle("ok", data.health.ok);
      health.classList.toggle("vs-alert", !data.health.ok);
    }
    setText(document.getElementById("live-calls-total"), String(data.live_calls_total));
    var shown = root.querySelectorAll(".vs-panel[data-campaign]").length;
    var missing = data.campaigns.filter(function (campaign) {
      return !updatePanel(campaign);
    }).length;
    var changed = document.getElementById("campaigns-changed");
    if (changed) {
      changed.hidden = !missing && shown === data.campaigns.length;
    }
    updateLiveCalls(data.live_calls);
    setText(state, words.live);
  }

  function refresh() {
    if (document.hidden) {
      // A tab nobody looks at costs the server nothing; it catches up when shown again.
      window.setTimeout(refresh, seconds * 1000);
      return;
    }
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (!response.ok || type.indexOf("application/json") !== 0) {
          // Logged out (the admin answers with its login page) or no longer allowed.
          throw new Error("stopped");
        }
        return response.json();
      })
      .then(function (data) {
        show(data);
        window.setTimeout(refresh, seconds * 1000);
      })
      .catch(function (error) {
        if (error.message === "stopped") {
          setText(state, words.stopped);
          return;
        }
        setText(state, words.paused);
        window.setTimeout(refresh, seconds * 1000);
      });
  }

  setText(state, words.live);
  window.setTimeout(refresh, seconds * 1000);
})();
