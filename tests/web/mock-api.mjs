// An in-memory stand-in for the lagwatch team API (/tmp/lw contract, see
// api/openapi.json), serving the real page files from api/src/web. For
// working on the page without Kafka or ClickHouse:
//
//   node tests/web/mock-api.mjs [port]     # token: lw_mock (team "web"), admin token: admin
//   LAGWATCH_WEB_URL=http://127.0.0.1:8088 LAGWATCH_WEB_TOKEN=lw_mock \
//     LAGWATCH_WEB_GROUP=billing LAGWATCH_WEB_TOPIC=orders LAGWATCH_WEB_EXPECTED_LAG=900 \
//     node tests/web/ui.mjs
//
// Every group reports lag 900 on three partitions of each of its topics, a
// few seconds after its monitor was created; a monitor whose threshold is
// below that fires `lag_threshold`.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const webDir = path.join(here, "..", "..", "api", "src", "web");
const port = Number(process.argv[2] || process.env.PORT || 8088);
const LAG = 900;
const tokens = { lw_mock: { team: "web", admin: false }, admin: { team: null, admin: true } };

const db = { monitors: new Map(), silences: new Map(), audit: [], nextMonitor: 1, nextSilence: 1, created: new Map() };
const MONITOR_FIELDS = [
  "team", "cluster", "consumer_group", "group_match", "topics", "topic_regex", "lag_threshold",
  "for_secs", "emails", "isolation", "time_lag", "alerting",
];

function send(res, status, body, type = "application/json") {
  res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store" });
  res.end(body === undefined ? "" : type === "application/json" ? JSON.stringify(body) : body);
}
const fail = (res, status, code, message, field) =>
  send(res, status, { error: field ? { code, message, field } : { code, message } });

function validate(input, who) {
  for (const key of Object.keys(input)) {
    if (!MONITOR_FIELDS.includes(key)) return [key, `unknown field \`${key}\``];
  }
  if (input.cluster !== "local") return ["cluster", `cluster \`${input.cluster}\` is not configured`];
  if (typeof input.consumer_group !== "string" || !input.consumer_group) return ["consumer_group", "must not be empty"];
  for (const [field, pattern] of [["topic_regex", input.topic_regex], ["consumer_group", input.group_match === "regex" ? input.consumer_group : null]]) {
    if (pattern) {
      try {
        new RegExp(pattern);
      } catch (error) {
        return [field, `invalid pattern: ${error.message}`];
      }
    }
  }
  if (!Number.isInteger(input.lag_threshold) || input.lag_threshold < 0) return ["lag_threshold", "must be a whole number >= 0"];
  if (!Number.isInteger(input.for_secs) || input.for_secs < 0) return ["for_secs", "must be a whole number >= 0"];
  for (const email of input.emails || []) if (!/^[^@\s]+@[^@\s]+$/.test(email)) return ["emails", `\`${email}\` is not an e-mail address`];
  if (who.admin && !input.team) return ["team", "required for the admin token"];
  return null;
}

function statusOf(m) {
  if (Date.now() - db.created.get(m.id) < 3000) return { monitor_id: m.id, groups: [] };
  const partitions = (m.topics.length ? m.topics : ["orders"]).flatMap((topic) =>
    [0, 1, 2].map((partition) => ({ topic, partition, committed_offset: 100, end_offset: 100 + LAG, lag: LAG, time_lag_ms: 12000, status: "stall", samples: 10, threshold_state: LAG > m.lag_threshold ? "over_threshold" : "ok" })),
  );
  return {
    monitor_id: m.id,
    lag_basis: "high_watermark",
    groups: [{ cluster: m.cluster, consumer_group: m.consumer_group, ts_ms: Date.now(), max_lag: LAG, total_lag: LAG * partitions.length, max_time_lag_ms: 12000, status: "stall", threshold_state: LAG > m.lag_threshold ? "over_threshold" : "ok", partitions }],
  };
}

function firing(who) {
  return [...db.monitors.values()]
    .filter((m) => (who.admin || m.team === who.team) && m.lag_threshold < LAG && statusOf(m).groups.length)
    .map((m) => ({
      fingerprint: `lag_threshold/${m.id}`, rule: "lag_threshold", state: "firing", monitor_id: m.id, team: m.team,
      cluster: m.cluster, consumer_group: m.consumer_group, max_lag: LAG, total_lag: LAG * 3, threshold: m.lag_threshold,
      ts_ms: db.created.get(m.id) + 3000, partitions: [], emails: m.emails,
    }));
}

async function readJson(req) {
  let text = "";
  for await (const chunk of req) text += chunk;
  return JSON.parse(text || "null");
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, "http://localhost");
  const files = { "/": ["index.html", "text/html; charset=utf-8"], "/app.js": ["app.js", "text/javascript"], "/app.css": ["app.css", "text/css"] };
  if (req.method === "GET" && files[url.pathname]) {
    const [file, type] = files[url.pathname];
    return send(res, 200, fs.readFileSync(path.join(webDir, file)), type);
  }
  if (!url.pathname.startsWith("/api/v1/")) return fail(res, 404, "not_found", "no such page");
  const who = tokens[(req.headers.authorization || "").replace(/^Bearer /, "")];
  if (!who) return fail(res, 401, "unauthorized", "missing or unknown token");
  const own = (m) => m && (who.admin || m.team === who.team);
  const route = `${req.method} ${url.pathname.replace(/\/\d+/g, "/:id")}`;
  const id = Number((url.pathname.match(/\/(\d+)/) || [])[1]);
  let body;
  try {
    body = ["POST", "PUT"].includes(req.method) ? await readJson(req) : null;
  } catch (error) {
    return fail(res, 400, "invalid_json", error.message);
  }
  const audit = (action, monitorId, before, after) =>
    db.audit.unshift({ id: db.audit.length + 1, ts_ms: Date.now(), actor: who.team || "admin", team: (after || before).team, action, monitor_id: monitorId, before, after });
  switch (route) {
    case "GET /api/v1/whoami":
      return send(res, 200, { team: who.team, admin: who.admin, grafana_url: "http://grafana.invalid" });
    case "GET /api/v1/clusters":
      return send(res, 200, { clusters: ["local"] });
    case "GET /api/v1/monitors":
      return send(res, 200, { monitors: [...db.monitors.values()].filter(own) });
    case "POST /api/v1/monitors":
    case "PUT /api/v1/monitors/:id": {
      if (route.startsWith("PUT") && !own(db.monitors.get(id))) return fail(res, 404, "not_found", "no such monitor");
      if (!who.admin) body.team = body.team || who.team;
      const problem = validate(body, who);
      if (problem) return fail(res, 400, "invalid_field", problem[1], problem[0]);
      const monitorId = route.startsWith("PUT") ? id : db.nextMonitor++;
      const before = db.monitors.get(monitorId) || null;
      const monitor = { id: monitorId, group_match: "exact", topic_regex: null, isolation: "read_uncommitted", time_lag: "estimate", alerting: {}, ...body };
      db.monitors.set(monitorId, monitor);
      if (!before) db.created.set(monitorId, Date.now());
      audit(before ? "update" : "create", monitorId, before, monitor);
      return send(res, before ? 200 : 201, monitor);
    }
    case "GET /api/v1/monitors/:id":
      return own(db.monitors.get(id)) ? send(res, 200, db.monitors.get(id)) : fail(res, 404, "not_found", "no such monitor");
    case "DELETE /api/v1/monitors/:id": {
      const before = db.monitors.get(id);
      if (!own(before)) return fail(res, 404, "not_found", "no such monitor");
      db.monitors.delete(id);
      audit("delete", id, before, null);
      return send(res, 204);
    }
    case "GET /api/v1/monitors/:id/status":
      return own(db.monitors.get(id)) ? send(res, 200, statusOf(db.monitors.get(id))) : fail(res, 404, "not_found", "no such monitor");
    case "GET /api/v1/alerts":
      return send(res, 200, { alerts: firing(who) });
    case "GET /api/v1/silences": {
      const now = Date.now();
      const all = url.searchParams.get("all") === "true";
      return send(res, 200, { silences: [...db.silences.values()].filter((s) => (who.admin || s.team === who.team) && (all || s.ends_at_ms > now)) });
    }
    case "POST /api/v1/silences": {
      if (!Number.isInteger(body.duration_secs) || body.duration_secs <= 0) return fail(res, 400, "invalid_field", "must be positive", "duration_secs");
      const now = Date.now();
      const silence = {
        id: db.nextSilence++, team: who.team || body.team, monitor_id: body.monitor_id, cluster: body.cluster,
        consumer_group: body.consumer_group, rule: body.rule, starts_at_ms: now, ends_at_ms: now + body.duration_secs * 1000,
        created_by: who.team || "admin", comment: body.comment || "", created_at_ms: now,
      };
      db.silences.set(silence.id, silence);
      return send(res, 201, silence);
    }
    case "DELETE /api/v1/silences/:id": {
      const silence = db.silences.get(id);
      if (!silence || !(who.admin || silence.team === who.team)) return fail(res, 404, "not_found", "no such silence");
      silence.ends_at_ms = Math.min(silence.ends_at_ms, Date.now());
      return send(res, 200, silence);
    }
    case "GET /api/v1/audit":
      return send(res, 200, { entries: db.audit.filter((e) => who.admin || e.team === who.team) });
    default:
      return fail(res, 404, "not_found", `no route ${route}`);
  }
});
server.listen(port, "127.0.0.1", () => console.log(`mock lagwatch API on http://127.0.0.1:${port}`));
