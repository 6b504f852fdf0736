// lagwatch team page: plain JavaScript over the REST API (/api/v1).
//
// Every piece of data from the API is put into the page with textContent or
// element attributes, never as HTML. The team token lives in sessionStorage
// (this tab only) and is sent as a Bearer token.
"use strict";

(() => {
  const TOKEN_KEY = "lagwatch.token";
  const params = new URLSearchParams(window.location.search);
  // Poll period in seconds; `?refresh=1` speeds the page up (tests use it).
  const POLL_MS = Math.max(1, Number(params.get("refresh")) || 5) * 1000;
  const SILENCE_SECS = 3600;
  // Threshold verdicts of GET /monitors/{id}/status (threshold_state).
  const STATE_TEXT = { ok: "ok", no_offset: "no committed offset", over_threshold: "over threshold" };
  // Window statuses (status), least severe first; shown upper-case with a
  // colour per word (app.css .status-*).
  const STATUS_ORDER = ["unknown", "ok", "warn", "stall", "stop", "rewind"];
  const STATUS_TITLE = {
    unknown: "too few recent samples to judge",
    ok: "keeping up",
    warn: "lag growing over the whole window",
    stall: "committed offset not moving while behind",
    stop: "no commit while behind for longer than the window",
    rewind: "committed offset moved backwards",
  };

  function worstStatus(statuses) {
    let worst = null;
    for (const s of statuses) {
      if (STATUS_ORDER.indexOf(s) > STATUS_ORDER.indexOf(worst)) worst = s;
    }
    return worst;
  }

  function statusBadge(status, testid) {
    const word = status || "unknown";
    return el("span", {
      class: "status status-" + word,
      "data-testid": testid,
      title: STATUS_TITLE[word] || "",
      text: word.toUpperCase(),
    });
  }

  const state = {
    whoami: null,
    clusters: [],
    monitors: [],
    statuses: new Map(), // monitor id -> {data} | {error}
    alerts: [],
    alertsError: "",
    silences: [],
    expanded: new Set(),
    editing: null, // null: form closed; {id: null}: adding; monitor: editing
    timer: null,
    refreshing: false,
    refreshAgain: false,
    rendered: {},
  };

  const $ = (id) => document.getElementById(id);

  /** Builds an element; attributes are set as attributes, text as text nodes. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  class ApiError extends Error {
    constructor(status, code, message, field) {
      super(message);
      this.status = status;
      this.code = code;
      this.field = field || null;
    }
  }

  const token = () => window.sessionStorage.getItem(TOKEN_KEY) || "";

  async function api(method, path, body) {
    const headers = { Accept: "application/json", Authorization: "Bearer " + token() };
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new ApiError(0, "network", "cannot reach lagwatch (" + error.message + ")");
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_) {
        data = null;
      }
    }
    if (!response.ok) {
      const detail = (data && data.error) || {};
      const error = new ApiError(
        response.status,
        detail.code || "http_" + response.status,
        detail.message || method + " " + path + " failed with HTTP " + response.status,
        detail.field,
      );
      if (response.status === 401 && path !== "/api/v1/whoami") {
        logout("Your token is no longer accepted: log in again.");
      }
      throw error;
    }
    return data;
  }

  // ---------------------------------------------------------------- format --

  function fmtNumber(value) {
    if (value === null || value === undefined) return "—";
    return Number(value).toLocaleString("en-US");
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined) return "—";
    let secs = Math.round(Number(ms) / 1000);
    if (secs < 60) return secs + " s";
    const parts = [];
    const days = Math.floor(secs / 86400);
    secs %= 86400;
    const hours = Math.floor(secs / 3600);
    secs %= 3600;
    const mins = Math.floor(secs / 60);
    secs %= 60;
    if (days) parts.push(days + " d");
    if (hours) parts.push(hours + " h");
    if (mins) parts.push(mins + " min");
    if (secs && !days) parts.push(secs + " s");
    return parts.join(" ");
  }

  function fmtTime(ms) {
    if (!ms) return "—";
    return new Date(Number(ms)).toLocaleString();
  }

  /** Shows a one-line message; `source` lets the poller clear only its own. */
  function notice(message, isError, source) {
    const node = $("notice");
    node.textContent = message || "";
    node.classList.toggle("error", Boolean(isError));
    node.dataset.source = source || "";
  }

  /** Upper-case hex of the UTF-8 bytes: the dashboards' variable values
   *  (ClickHouse hex(); see dashboards/README.md). */
  function hexUtf8(text) {
    return Array.from(new TextEncoder().encode(text), (b) =>
      b.toString(16).toUpperCase().padStart(2, "0"),
    ).join("");
  }

  function grafanaLink(cluster, group) {
    const base = state.whoami && state.whoami.grafana_url;
    if (!base || !/^https?:\/\//i.test(base)) return null;
    const url =
      base.replace(/\/+$/, "") +
      "/d/lagwatch-group?var-cluster=" +
      hexUtf8(cluster) +
      "&var-group=" +
      hexUtf8(group);
    return el("a", {
      href: url,
      target: "_blank",
      rel: "noopener noreferrer",
      "aria-label": "Grafana dashboard of " + group + " on " + cluster,
      text: "Grafana",
    });
  }

  // ------------------------------------------------------------ login/out --

  function showLoggedIn(loggedIn) {
    $("login-view").hidden = loggedIn;
    $("app-view").hidden = !loggedIn;
    $("who").hidden = !loggedIn;
  }

  async function login(candidate) {
    window.sessionStorage.setItem(TOKEN_KEY, candidate);
    let whoami;
    try {
      whoami = await api("GET", "/api/v1/whoami");
    } catch (error) {
      window.sessionStorage.removeItem(TOKEN_KEY);
      throw error;
    }
    state.whoami = whoami;
    $("team-name").textContent = whoami.team || (whoami.admin ? "administrator" : "?");
    for (const node of document.querySelectorAll(".admin-only")) node.hidden = !whoami.admin;
    showLoggedIn(true);
    try {
      const clusters = await api("GET", "/api/v1/clusters");
      state.clusters = (clusters && clusters.clusters) || [];
    } catch (error) {
      notice("Cannot list clusters: " + error.message, true);
    }
    state.rendered = {};
    await refresh();
    if (state.timer) window.clearInterval(state.timer);
    state.timer = window.setInterval(refresh, POLL_MS);
  }

  function logout(message) {
    window.sessionStorage.removeItem(TOKEN_KEY);
    if (state.timer) window.clearInterval(state.timer);
    Object.assign(state, {
      whoami: null,
      clusters: [],
      monitors: [],
      statuses: new Map(),
      alerts: [],
      alertsError: "",
      silences: [],
      expanded: new Set(),
      editing: null,
      timer: null,
      rendered: {},
    });
    closeForm();
    for (const id of ["monitors-body", "alerts-body", "silences-body"]) $(id).replaceChildren();
    $("team-name").textContent = "";
    $("login-token").value = "";
    $("login-error").textContent = message || "";
    notice("");
    showLoggedIn(false);
    $("login-token").focus();
  }

  // --------------------------------------------------------------- polling --

  async function refresh() {
    if (!state.whoami) return;
    if (state.refreshing) {
      state.refreshAgain = true;
      return;
    }
    state.refreshing = true;
    try {
      do {
        state.refreshAgain = false;
        await refreshOnce();
      } while (state.refreshAgain && state.whoami);
    } finally {
      state.refreshing = false;
    }
  }

  async function refreshOnce() {
    const [monitors, alerts, silences] = await Promise.allSettled([
      api("GET", "/api/v1/monitors"),
      api("GET", "/api/v1/alerts"),
      api("GET", "/api/v1/silences"),
    ]);
    if (!state.whoami) return;
    const problems = [];
    if (monitors.status === "fulfilled") {
      state.monitors = (monitors.value && monitors.value.monitors) || [];
      state.monitors.sort((a, b) => a.id - b.id);
    } else {
      problems.push("monitors: " + monitors.reason.message);
    }
    if (alerts.status === "fulfilled") {
      state.alerts = (alerts.value && alerts.value.alerts) || [];
      state.alertsError = "";
    } else {
      state.alertsError = "Alerts are unavailable: " + alerts.reason.message;
    }
    if (silences.status === "fulfilled") {
      state.silences = (silences.value && silences.value.silences) || [];
    } else {
      problems.push("silences: " + silences.reason.message);
    }
    const statuses = await Promise.allSettled(
      state.monitors.map((m) => api("GET", "/api/v1/monitors/" + m.id + "/status")),
    );
    if (!state.whoami) return;
    const next = new Map();
    state.monitors.forEach((monitor, i) => {
      const result = statuses[i];
      next.set(
        monitor.id,
        result.status === "fulfilled"
          ? { data: result.value }
          : { error: result.reason.code === "history_unavailable" ? "history unavailable" : result.reason.message },
      );
    });
    state.statuses = next;
    render();
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    if (problems.length) notice("Refresh failed: " + problems.join("; "), true, "refresh");
    else if ($("notice").dataset.source === "refresh") notice("");
  }

  // ------------------------------------------------------------- rendering --

  /** Re-renders a region only when its inputs changed (keeps focus and clicks stable). */
  function renderIfChanged(name, inputs, draw) {
    const key = JSON.stringify(inputs);
    if (state.rendered[name] === key) return;
    state.rendered[name] = key;
    draw();
  }

  function render() {
    const admin = Boolean(state.whoami && state.whoami.admin);
    renderIfChanged(
      "monitors",
      [state.monitors, [...state.statuses], [...state.expanded], admin, state.whoami],
      renderMonitors,
    );
    renderIfChanged("alerts", [state.alerts, state.silences, state.alertsError], renderAlerts);
    renderIfChanged("silences", [state.silences], renderSilences);
  }

  function summarize(status) {
    if (!status) return { lag: "…", time: "…", status: null };
    if (status.error) return { lag: status.error, time: "—", error: true, status: null };
    const groups = (status.data && status.data.groups) || [];
    if (!groups.length) return { lag: "no data yet", time: "—", empty: true, status: "unknown" };
    let lag = null;
    let time = null;
    for (const g of groups) {
      if (g.max_lag !== null && g.max_lag !== undefined) lag = Math.max(lag === null ? -Infinity : lag, g.max_lag);
      if (g.max_time_lag_ms !== null && g.max_time_lag_ms !== undefined) {
        time = Math.max(time === null ? -Infinity : time, g.max_time_lag_ms);
      }
    }
    return {
      lag: fmtNumber(lag),
      time: fmtDuration(time),
      value: lag,
      status: worstStatus(groups.map((g) => g.status)),
    };
  }

  function topicsText(m) {
    const parts = [];
    if (m.topics && m.topics.length) parts.push(m.topics.join(", "));
    if (m.topic_regex) parts.push("/" + m.topic_regex + "/");
    return parts.length ? parts.join(" + ") : "all topics";
  }

  function renderMonitors() {
    const admin = Boolean(state.whoami && state.whoami.admin);
    const body = $("monitors-body");
    const rows = [];
    const columns = admin ? 11 : 10;
    for (const m of state.monitors) {
      const status = state.statuses.get(m.id);
      const summary = summarize(status);
      const expanded = state.expanded.has(m.id);
      const detailsId = "monitor-details-" + m.id;
      const over = summary.value !== undefined && summary.value !== null && summary.value > m.lag_threshold;
      rows.push(
        el(
          "tr",
          {
            "data-testid": "monitor-row",
            "data-monitor-id": m.id,
            "data-group": m.consumer_group,
            class: over ? "over" : null,
          },
          el("td", { text: m.id }),
          admin ? el("td", { text: m.team }) : null,
          el("td", { text: m.cluster }),
          el("td", {}, el("span", { class: "mono", text: m.consumer_group }), m.group_match === "regex" ? " (pattern)" : null),
          el("td", { class: "mono", text: topicsText(m) }),
          el("td", { "data-testid": "threshold", text: fmtNumber(m.lag_threshold) + " for " + fmtDuration(m.for_secs * 1000) }),
          el("td", {
            "data-testid": "max-lag",
            class: "num" + (summary.error ? " error" : "") + (over ? " over" : ""),
            text: summary.lag,
          }),
          el("td", { "data-testid": "max-time-lag", class: "num", text: summary.time }),
          el("td", {}, summary.status ? statusBadge(summary.status, "status") : "…"),
          el("td", {}, m.group_match === "regex" ? null : grafanaLink(m.cluster, m.consumer_group)),
          el(
            "td",
            { class: "actions" },
            el("button", {
              type: "button",
              "aria-expanded": expanded ? "true" : "false",
              "aria-controls": detailsId,
              "aria-label": "Partitions of monitor " + m.id,
              text: expanded ? "Hide partitions" : "Partitions",
              onclick: () => {
                if (state.expanded.has(m.id)) state.expanded.delete(m.id);
                else state.expanded.add(m.id);
                render();
              },
            }),
            el("button", {
              type: "button",
              "aria-label": "Edit monitor " + m.id,
              text: "Edit",
              onclick: () => openForm(m),
            }),
            el("button", {
              type: "button",
              class: "danger",
              "aria-label": "Delete monitor " + m.id,
              text: "Delete",
              onclick: () => deleteMonitor(m),
            }),
          ),
        ),
      );
      if (expanded) {
        rows.push(
          el(
            "tr",
            { id: detailsId, class: "details", "data-testid": "monitor-details" },
            el("td", { colspan: columns }, renderDetails(m, status)),
          ),
        );
      }
    }
    body.replaceChildren(...rows);
    $("monitors-empty").hidden = state.monitors.length > 0;
  }

  function renderDetails(m, status) {
    if (!status) return el("p", { text: "Loading…" });
    if (status.error) return el("p", { class: "error", text: "Status: " + status.error });
    const groups = (status.data && status.data.groups) || [];
    if (!groups.length) {
      return el("p", { text: "No sample in the last minutes: the collector has not reported this group yet." });
    }
    return el(
      "div",
      {},
      groups.map((g) =>
        el(
          "div",
          { class: "group-detail" },
          el(
            "p",
            {},
            statusBadge(g.status, "group-status"),
            " ",
            el("strong", { class: "mono", text: g.consumer_group }),
            " on ",
            g.cluster,
            " — sampled " + fmtTime(g.ts_ms) + ", total lag " + fmtNumber(g.total_lag) +
              (status.data.lag_basis === "last_stable_offset" ? " (read_committed: lag against the last stable offset)" : "") +
              " ",
            m.group_match === "regex" ? grafanaLink(g.cluster, g.consumer_group) : null,
          ),
          el(
            "table",
            { class: "grid inner", "aria-label": "Partitions of " + g.consumer_group + " on " + g.cluster },
            el(
              "thead",
              {},
              el(
                "tr",
                {},
                ["Topic", "Partition", "Committed", "End offset", "Lag", "Time lag", "Status", "Threshold"].map((h) => el("th", { scope: "col", text: h })),
              ),
            ),
            el(
              "tbody",
              {},
              (g.partitions || []).map((p) =>
                el(
                  "tr",
                  { "data-testid": "partition-row" },
                  el("td", { class: "mono", text: p.topic }),
                  el("td", { class: "num", text: p.partition }),
                  el("td", { class: "num", text: fmtNumber(p.committed_offset) }),
                  el("td", { class: "num", text: fmtNumber(p.end_offset) }),
                  el("td", { class: "num", text: fmtNumber(p.lag) }),
                  el("td", { class: "num", text: fmtDuration(p.time_lag_ms) }),
                  el("td", {}, statusBadge(p.status, "partition-status")),
                  el("td", {
                    class: "state-" + (p.threshold_state || "unknown"),
                    text: STATE_TEXT[p.threshold_state] || p.threshold_state || "—",
                  }),
                ),
              ),
            ),
          ),
        ),
      ),
    );
  }

  function activeSilenceFor(alert) {
    const now = Date.now();
    const same = (matcher, value) => matcher === null || matcher === undefined || matcher === value;
    return state.silences.find(
      (s) =>
        s.starts_at_ms <= now &&
        now < s.ends_at_ms &&
        s.team === alert.team &&
        same(s.monitor_id, alert.monitor_id) &&
        same(s.cluster, alert.cluster) &&
        same(s.consumer_group, alert.consumer_group) &&
        same(s.rule, alert.rule),
    );
  }

  function renderAlerts() {
    const rows = state.alerts.map((a) => {
      const silence = activeSilenceFor(a);
      const label = a.rule + " on " + a.consumer_group;
      return el(
        "tr",
        {
          "data-testid": "alert-row",
          "data-rule": a.rule,
          "data-group": a.consumer_group,
          "data-monitor-id": a.monitor_id,
          class: silence ? "silenced" : "firing",
        },
        el("td", {}, a.rule, a.status ? " (" + String(a.status).toUpperCase() + ")" : null),
        el("td", { text: a.cluster }),
        el("td", { class: "mono", text: a.consumer_group }),
        el("td", { class: "num", text: a.monitor_id }),
        el("td", { class: "num", text: fmtNumber(a.max_lag) }),
        el("td", { class: "num", text: fmtNumber(a.threshold) }),
        el("td", { text: fmtTime(a.ts_ms) }),
        el("td", { "data-testid": "silenced", text: silence ? "until " + fmtTime(silence.ends_at_ms) : "no" }),
        el(
          "td",
          { class: "actions" },
          silence
            ? null
            : el("button", {
                type: "button",
                "aria-label": "Silence 1h: " + label,
                text: "Silence 1h",
                onclick: (event) => silenceAlert(a, event.currentTarget),
              }),
        ),
      );
    });
    $("alerts-body").replaceChildren(...rows);
    $("alerts-empty").hidden = state.alerts.length > 0 || Boolean(state.alertsError);
    $("alerts-error").textContent = state.alertsError;
  }

  function silenceMatchers(s) {
    const parts = [];
    if (s.monitor_id !== null && s.monitor_id !== undefined) parts.push("monitor " + s.monitor_id);
    if (s.rule) parts.push("rule " + s.rule);
    if (s.cluster) parts.push("cluster " + s.cluster);
    if (s.consumer_group) parts.push("group " + s.consumer_group);
    return parts.length ? parts.join(", ") : "every alert of team " + s.team;
  }

  function renderSilences() {
    const rows = state.silences.map((s) =>
      el(
        "tr",
        { "data-testid": "silence-row", "data-silence-id": s.id, "data-monitor-id": s.monitor_id },
        el("td", { class: "num", text: s.id }),
        el("td", { text: silenceMatchers(s) }),
        el("td", { text: fmtTime(s.ends_at_ms) }),
        el("td", { text: s.created_by }),
        el("td", { text: s.comment }),
        el(
          "td",
          { class: "actions" },
          el("button", {
            type: "button",
            "aria-label": "Expire silence " + s.id,
            text: "Expire",
            onclick: (event) => expireSilence(s, event.currentTarget),
          }),
        ),
      ),
    );
    $("silences-body").replaceChildren(...rows);
    $("silences-empty").hidden = state.silences.length > 0;
  }

  // --------------------------------------------------------------- actions --

  async function deleteMonitor(m) {
    if (!window.confirm("Delete monitor " + m.id + " (" + m.consumer_group + " on " + m.cluster + ")?")) return;
    try {
      await api("DELETE", "/api/v1/monitors/" + m.id);
      state.expanded.delete(m.id);
      if (state.editing && state.editing.id === m.id) closeForm();
      notice("Monitor " + m.id + " deleted.");
      await refresh();
    } catch (error) {
      notice("Cannot delete monitor " + m.id + ": " + error.message, true);
    }
  }

  async function silenceAlert(a, button) {
    button.disabled = true;
    try {
      const silence = await api("POST", "/api/v1/silences", {
        monitor_id: a.monitor_id,
        cluster: a.cluster,
        consumer_group: a.consumer_group,
        rule: a.rule,
        duration_secs: SILENCE_SECS,
        comment: "silenced for 1h from the web page",
      });
      notice("Silence " + silence.id + " created: " + a.rule + " on " + a.consumer_group + " is muted for 1 hour.");
      await refresh();
    } catch (error) {
      button.disabled = false;
      notice("Cannot silence: " + error.message, true);
    }
  }

  async function expireSilence(s, button) {
    button.disabled = true;
    try {
      await api("DELETE", "/api/v1/silences/" + s.id);
      notice("Silence " + s.id + " expired.");
      await refresh();
    } catch (error) {
      button.disabled = false;
      notice("Cannot expire silence " + s.id + ": " + error.message, true);
    }
  }

  // ------------------------------------------------------------------ form --

  const FORM_FIELDS = [
    "team",
    "cluster",
    "consumer_group",
    "group_match",
    "topics",
    "topic_regex",
    "isolation",
    "time_lag",
    "lag_threshold",
    "for_secs",
    "topic_lag_threshold",
    "total_lag_threshold",
    "time_lag_threshold_secs",
    "repeat_interval_secs",
    "emails",
    "webhooks",
  ];
  const input = (name) => $("f-" + name);

  function clearErrors() {
    for (const name of FORM_FIELDS) {
      $("e-" + name).textContent = "";
      input(name).removeAttribute("aria-invalid");
    }
    $("form-error").textContent = "";
  }

  function setFieldError(name, message) {
    $("e-" + name).textContent = message;
    input(name).setAttribute("aria-invalid", "true");
  }

  /** Maps the API's `field` (e.g. `topics[1]`, `alerting.webhooks`) to a form field. */
  function formFieldFor(field) {
    if (!field) return null;
    const base = String(field).replace(/\[\d*\]/g, "").replace(/^\//, "").replace(/\//g, ".");
    const candidates = [base, base.replace(/^alerting\./, ""), base.split(".")[0]];
    if (base === "for") candidates.push("for_secs");
    return candidates.find((c) => FORM_FIELDS.includes(c)) || null;
  }

  function fillClusters(selected) {
    const select = input("cluster");
    const names = [...state.clusters];
    if (selected && !names.includes(selected)) names.push(selected);
    select.replaceChildren(...names.map((c) => el("option", { value: c, text: c })));
    if (selected) select.value = selected;
  }

  function openForm(monitor) {
    const m = monitor || null;
    state.editing = m ? m : { id: null };
    clearErrors();
    $("form-title").textContent = m ? "Edit monitor " + m.id : "Add monitor";
    fillClusters(m ? m.cluster : state.clusters[0]);
    const alerting = (m && m.alerting) || {};
    const value = (v) => (v === null || v === undefined ? "" : String(v));
    input("team").value = m ? m.team : "";
    input("consumer_group").value = m ? m.consumer_group : "";
    input("group_match").value = m ? m.group_match || "exact" : "exact";
    input("topics").value = m ? (m.topics || []).join(", ") : "";
    input("topic_regex").value = m ? value(m.topic_regex) : "";
    input("isolation").value = m ? m.isolation || "read_uncommitted" : "read_uncommitted";
    input("time_lag").value = m ? m.time_lag || "estimate" : "estimate";
    input("lag_threshold").value = m ? value(m.lag_threshold) : "";
    input("for_secs").value = m ? value(m.for_secs) : "60";
    input("topic_lag_threshold").value = value(alerting.topic_lag_threshold);
    input("total_lag_threshold").value = value(alerting.total_lag_threshold);
    input("time_lag_threshold_secs").value = value(alerting.time_lag_threshold_secs);
    input("repeat_interval_secs").value = value(alerting.repeat_interval_secs);
    input("emails").value = m ? (m.emails || []).join(", ") : "";
    input("webhooks").value = (alerting.webhooks || []).join("\n");
    $("form-view").hidden = false;
    $("add-monitor").disabled = true;
    input("consumer_group").focus();
  }

  function closeForm() {
    state.editing = null;
    $("form-view").hidden = true;
    $("add-monitor").disabled = false;
  }

  const splitList = (text, separator) =>
    text
      .split(separator)
      .map((s) => s.trim())
      .filter((s) => s.length > 0);

  /** Reads the form into a MonitorInput; returns null after marking local errors. */
  function readForm() {
    let ok = true;
    const integer = (name, required) => {
      const raw = input(name).value.trim();
      if (raw === "") {
        if (required) {
          setFieldError(name, "Required.");
          ok = false;
        }
        return undefined;
      }
      if (!/^\d+$/.test(raw)) {
        setFieldError(name, "Enter a whole number of at least 0.");
        ok = false;
        return undefined;
      }
      return Number(raw);
    };
    const body = {
      cluster: input("cluster").value,
      consumer_group: input("consumer_group").value.trim(),
      group_match: input("group_match").value,
      topics: splitList(input("topics").value, ","),
      topic_regex: input("topic_regex").value.trim() || null,
      lag_threshold: integer("lag_threshold", true),
      for_secs: integer("for_secs", true),
      emails: splitList(input("emails").value, ","),
      isolation: input("isolation").value,
      time_lag: input("time_lag").value,
    };
    const alerting = {};
    for (const name of ["topic_lag_threshold", "total_lag_threshold", "time_lag_threshold_secs", "repeat_interval_secs"]) {
      const v = integer(name, false);
      if (v !== undefined) alerting[name] = v;
    }
    const webhooks = splitList(input("webhooks").value, /\r?\n/);
    if (webhooks.length) alerting.webhooks = webhooks;
    body.alerting = alerting;
    if (state.whoami && state.whoami.admin) {
      body.team = input("team").value.trim();
      if (!body.team) {
        setFieldError("team", "Required for an administrator.");
        ok = false;
      }
    }
    if (!body.cluster) {
      setFieldError("cluster", "No cluster is configured.");
      ok = false;
    }
    if (!body.consumer_group) {
      setFieldError("consumer_group", "Required.");
      ok = false;
    }
    return ok ? body : null;
  }

  async function saveForm(event) {
    event.preventDefault();
    if (!state.editing) return;
    clearErrors();
    const body = readForm();
    if (!body) {
      $("form-error").textContent = "Fix the marked fields.";
      return;
    }
    const editingId = state.editing.id;
    const save = $("form-save");
    save.disabled = true;
    try {
      const saved =
        editingId === null
          ? await api("POST", "/api/v1/monitors", body)
          : await api("PUT", "/api/v1/monitors/" + editingId, body);
      closeForm();
      notice("Monitor " + saved.id + " saved.");
      await refresh();
    } catch (error) {
      const name = formFieldFor(error.field);
      if (name) {
        setFieldError(name, error.message);
        $("form-error").textContent = "The monitor was not saved: fix the marked field.";
        input(name).focus();
      } else {
        $("form-error").textContent = "The monitor was not saved: " + error.message;
      }
    } finally {
      save.disabled = false;
    }
  }

  // ---------------------------------------------------------------- wiring --

  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const candidate = $("login-token").value.trim();
    $("login-error").textContent = "";
    if (!candidate) {
      $("login-error").textContent = "Enter your team token.";
      return;
    }
    try {
      await login(candidate);
      $("login-token").value = "";
    } catch (error) {
      $("login-error").textContent =
        error.status === 401 ? "This token is not valid." : "Cannot log in: " + error.message;
    }
  });
  $("logout").addEventListener("click", () => logout(""));
  $("add-monitor").addEventListener("click", () => openForm(null));
  $("form-cancel").addEventListener("click", () => closeForm());
  $("monitor-form").addEventListener("submit", saveForm);
  $("monitor-form").addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      closeForm();
      $("add-monitor").focus();
    }
  });

  if (token()) {
    login(token()).catch((error) => {
      showLoggedIn(false);
      $("login-error").textContent =
        error.status === 401 ? "Your saved token is no longer valid: log in again." : "Cannot log in: " + error.message;
    });
  } else {
    showLoggedIn(false);
  }
})();
