// End-to-end walk through the lagwatch team page in headless Chromium
// (Debian's /usr/bin/chromium driven by playwright-core; no test runner).
//
// Run by tests/tests/web_ui.rs against a real `lagwatch all`; by hand:
//   LAGWATCH_WEB_URL=http://127.0.0.1:9464 LAGWATCH_WEB_TOKEN=lw_... \
//   LAGWATCH_WEB_GROUP=<group> LAGWATCH_WEB_TOPIC=<topic> LAGWATCH_WEB_EXPECTED_LAG=900 \
//   node tests/web/ui.mjs
//
// Environment:
//   LAGWATCH_WEB_URL            base URL of the lagwatch HTTP listener (required)
//   LAGWATCH_WEB_TOKEN          a team token (required)
//   LAGWATCH_WEB_TEAM           the token's team, checked in the header (optional)
//   LAGWATCH_WEB_GROUP/_TOPIC   a consumer group with committed lag on the topic (required)
//   LAGWATCH_WEB_EXPECTED_LAG   its largest partition lag (required)
//   LAGWATCH_WEB_PARTITIONS     its partition count, checked in the details (optional)
//   LAGWATCH_WEB_CLUSTER        cluster name to pick (default: local)
//   LAGWATCH_WEB_GRAFANA_URL    expected Grafana base URL of the dashboard link (optional)
//   LAGWATCH_WEB_ARTIFACTS      where a failure screenshot goes (default: a new temp dir)
//   LAGWATCH_WEB_TIMEOUT_MS     per-wait timeout (default 90000)
//   LAGWATCH_CHROMIUM           browser binary (default /usr/bin/chromium)
//   LAGWATCH_NODE_MODULES       where playwright-core is installed
//                               (default $LAGWATCH_CACHE_DIR/node/node_modules,
//                               LAGWATCH_CACHE_DIR defaulting to ~/.cache/lagwatch)
//
// Prints one line `LAGWATCH_WEB_RESULT {json}` on success (ids of what it
// created, step timings) and exits 0; on failure it saves a screenshot and
// the page text, names the step, and exits 1.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";

const env = process.env;
function required(name) {
  const value = env[name];
  if (!value) {
    console.error(`ui.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
}
const baseUrl = required("LAGWATCH_WEB_URL").replace(/\/+$/, "");
const token = required("LAGWATCH_WEB_TOKEN");
const group = required("LAGWATCH_WEB_GROUP");
const topic = required("LAGWATCH_WEB_TOPIC");
const expectedLag = Number(required("LAGWATCH_WEB_EXPECTED_LAG"));
const partitions = env.LAGWATCH_WEB_PARTITIONS ? Number(env.LAGWATCH_WEB_PARTITIONS) : null;
const cluster = env.LAGWATCH_WEB_CLUSTER || "local";
const team = env.LAGWATCH_WEB_TEAM || null;
const grafanaUrl = env.LAGWATCH_WEB_GRAFANA_URL || null;
const timeout = Number(env.LAGWATCH_WEB_TIMEOUT_MS || 90000);
const chromiumPath = env.LAGWATCH_CHROMIUM || "/usr/bin/chromium";
const cacheDir = env.LAGWATCH_CACHE_DIR || path.join(os.homedir(), ".cache", "lagwatch");
const nodeModules = env.LAGWATCH_NODE_MODULES || path.join(cacheDir, "node", "node_modules");

let chromium;
try {
  ({ chromium } = createRequire(path.join(nodeModules, "noop.js"))("playwright-core"));
} catch (error) {
  console.error(`ui.mjs: playwright-core not found under ${nodeModules} (${error.message}): run tests/infra/install.sh`);
  process.exit(2);
}
if (!fs.existsSync(chromiumPath)) {
  console.error(`ui.mjs: no Chromium at ${chromiumPath}: run tests/infra/install.sh (apt package chromium)`);
  process.exit(2);
}

const lagText = expectedLag.toLocaleString("en-US");
const started = Date.now();
const timings = [];
const pageErrors = [];
const result = {};
let current = "start";

function log(message) {
  console.error(`[ui ${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);
}

async function step(name, body) {
  current = name;
  const t0 = Date.now();
  log(`step: ${name}`);
  await body();
  timings.push({ step: name, ms: Date.now() - t0 });
}

function fail(message) {
  throw new Error(message);
}

/**
 * Polls `probe` until it returns a truthy value; fails naming `what` and,
 * when given, what `seen()` shows at the end.
 */
async function until(what, probe, ms = timeout, seen = null) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (error) {
      last = error.message;
    }
    if (Date.now() > deadline) {
      const shown = seen ? await seen().catch((error) => `(${error.message})`) : last;
      fail(`timed out after ${ms} ms waiting for ${what} (seen: ${JSON.stringify(shown)})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const attr = (value) => JSON.stringify(String(value));

const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  // Root in CI: Chromium's sandbox needs a user namespace it may not get.
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
const page = await context.newPage();
page.setDefaultTimeout(timeout);
page.on("pageerror", (error) => pageErrors.push(String(error)));
page.on("console", (message) => {
  if (message.type() === "error") log(`browser console error: ${message.text()}`);
});

const monitorRow = () => page.locator(`tr[data-testid="monitor-row"][data-group=${attr(group)}]`);
const field = (label) => page.getByLabel(label, { exact: true });

try {
  await step("open the page", async () => {
    const response = await page.goto(`${baseUrl}/?refresh=1`);
    if (!response || response.status() !== 200) fail(`GET / answered ${response && response.status()}`);
    await page.getByRole("heading", { name: "Log in" }).waitFor();
  });

  await step("a wrong token is refused", async () => {
    await field("Team token").fill("lw_not-a-real-token");
    await page.getByRole("button", { name: "Log in" }).click();
    await until("the login error", async () => /not valid/.test(await page.getByTestId("login-error").textContent()));
    if (await page.locator("#app-view").isVisible()) fail("the page opened with a wrong token");
  });

  await step("log in with the team token", async () => {
    await field("Team token").fill(token);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("heading", { name: "Monitors" }).waitFor();
    const shown = await until("the team name", async () => (await page.getByTestId("team-name").textContent()).trim());
    if (team && shown !== team) fail(`header shows team ${JSON.stringify(shown)}, expected ${JSON.stringify(team)}`);
    result.team = shown;
  });

  await step("the session survives a reload", async () => {
    await page.reload();
    await page.getByRole("heading", { name: "Monitors" }).waitFor();
  });

  await step("the API's field error shows next to the field", async () => {
    await page.getByRole("button", { name: "Add monitor" }).click();
    await page.getByRole("heading", { name: "Add monitor" }).waitFor();
    // The list is filled by the page's /clusters request: wait for it.
    await until(
      `cluster ${cluster} in the list`,
      async () => (await field("Cluster").locator("option").allTextContents()).includes(cluster),
      timeout,
      () => field("Cluster").locator("option").allTextContents(),
    );
    await field("Cluster").selectOption(cluster);
    await field("Consumer group").fill(group);
    await field("Topics").fill(topic);
    await field("Topic pattern").fill("orders(");
    await field("Lag threshold").fill("1000000");
    await field("For (seconds)").fill("0");
    await field("E-mails").fill(`web-ui-${group}@example.com`);
    await page.getByRole("button", { name: "Save monitor" }).click();
    const message = await until("the topic pattern error", async () => (await page.getByTestId("error-topic_regex").textContent()).trim());
    if ((await field("Topic pattern").getAttribute("aria-invalid")) !== "true") fail("topic pattern not marked invalid");
    if ((await monitorRow().count()) !== 0) fail("a monitor with an invalid pattern was saved");
    log(`field error shown: ${message}`);
  });

  await step("add the monitor through the form", async () => {
    await field("Topic pattern").fill("");
    await page.getByRole("button", { name: "Save monitor" }).click();
    await monitorRow().waitFor();
    if (await page.locator("#form-view").isVisible()) fail("the form stayed open after saving");
    result.monitor_id = Number(await monitorRow().getAttribute("data-monitor-id"));
    if (!(result.monitor_id > 0)) fail("the new row has no monitor id");
    const threshold = (await monitorRow().getByTestId("threshold").textContent()).trim();
    if (!threshold.startsWith("1,000,000")) fail(`threshold cell shows ${JSON.stringify(threshold)}`);
  });

  await step("the collector's live lag appears", async () => {
    const cell = () => monitorRow().getByTestId("max-lag").textContent({ timeout: 1000 });
    await until(`max lag ${lagText} of ${group}`, async () => (await cell()).trim() === lagText, timeout, cell);
    const timeLag = (await monitorRow().getByTestId("max-time-lag").textContent()).trim();
    const word = (await monitorRow().getByTestId("status").textContent()).trim();
    if (!["UNKNOWN", "OK", "WARN", "STALL", "STOP", "REWIND"].includes(word)) fail(`status cell shows ${JSON.stringify(word)}`);
    log(`live status: max lag ${lagText}, max time lag ${timeLag}, status ${word}`);
  });

  await step("partition details expand", async () => {
    await page.getByRole("button", { name: `Partitions of monitor ${result.monitor_id}` }).click();
    const rows = page.locator('tr[data-testid="monitor-details"] tr[data-testid="partition-row"]');
    await rows.first().waitFor();
    const cells = await rows.evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent.trim())));
    if (partitions !== null && cells.length !== partitions) fail(`${cells.length} partition rows, expected ${partitions}: ${JSON.stringify(cells)}`);
    for (const row of cells) {
      if (row[0] !== topic) fail(`partition row of another topic: ${JSON.stringify(row)}`);
      if (row[4] !== lagText) fail(`partition lag ${JSON.stringify(row)}, expected ${lagText}`);
    }
    const expanded = await page.getByRole("button", { name: `Partitions of monitor ${result.monitor_id}` }).getAttribute("aria-expanded");
    if (expanded !== "true") fail("the details button does not say it is expanded");
  });

  await step("the Grafana link points at the group dashboard", async () => {
    const link = monitorRow().getByRole("link", { name: `Grafana dashboard of ${group} on ${cluster}` });
    if (grafanaUrl) {
      const href = await link.getAttribute("href");
      const want = `${grafanaUrl.replace(/\/+$/, "")}/d/lagwatch-group?var-cluster=${hex(cluster)}&var-group=${hex(group)}`;
      if (href !== want) fail(`dashboard link ${href}, expected ${want}`);
    } else if ((await link.count()) !== 0) {
      log("a Grafana link is shown although no Grafana URL was expected");
    }
  });

  await step("edit the threshold below the lag", async () => {
    await page.getByRole("button", { name: `Edit monitor ${result.monitor_id}` }).click();
    await page.getByRole("heading", { name: `Edit monitor ${result.monitor_id}` }).waitFor();
    if ((await field("Consumer group").inputValue()) !== group) fail("the edit form is not filled with the monitor");
    if ((await field("Topics").inputValue()) !== topic) fail("the edit form lost the topics");
    await field("Lag threshold").fill(String(Math.max(0, Math.floor(expectedLag / 2))));
    await page.getByRole("button", { name: "Save monitor" }).click();
    const want = Math.max(0, Math.floor(expectedLag / 2)).toLocaleString("en-US");
    await until(`threshold ${want} in the row`, async () => (await monitorRow().getByTestId("threshold").textContent()).trim().startsWith(want));
  });

  const alertRow = () =>
    page.locator(`tr[data-testid="alert-row"][data-rule="lag_threshold"][data-group=${attr(group)}][data-monitor-id=${attr(result.monitor_id)}]`);

  await step("a firing threshold alert is listed", async () => {
    await alertRow().waitFor();
    const silenced = (await alertRow().getByTestId("silenced").textContent()).trim();
    if (silenced !== "no") fail(`the new alert shows as silenced: ${silenced}`);
  });

  await step("silence it for 1 hour", async () => {
    await page.getByRole("button", { name: `Silence 1h: lag_threshold on ${group}` }).click();
    const silenceRow = page.locator(`tr[data-testid="silence-row"][data-monitor-id=${attr(result.monitor_id)}]`);
    await silenceRow.waitFor();
    result.silence_id = Number(await silenceRow.getAttribute("data-silence-id"));
    const text = await silenceRow.textContent();
    if (!text.includes("rule lag_threshold") || !text.includes(group)) fail(`silence row lacks its matchers: ${text}`);
    await until("the alert marked silenced", async () => (await alertRow().getByTestId("silenced").textContent()).trim().startsWith("until"));
    const endsIn = await until("the silence end", () => silenceRow.evaluate((tr) => tr.cells[2].textContent));
    log(`silence ${result.silence_id} until ${endsIn}`);
  });

  await step("expire the silence", async () => {
    await page.getByRole("button", { name: `Expire silence ${result.silence_id}` }).click();
    await page.locator(`tr[data-testid="silence-row"][data-silence-id=${attr(result.silence_id)}]`).waitFor({ state: "detached" });
    await until("the alert unsilenced", async () => (await alertRow().getByTestId("silenced").textContent()).trim() === "no");
  });

  await step("delete the monitor (confirmed)", async () => {
    let asked = "";
    page.once("dialog", (dialog) => {
      asked = dialog.message();
      dialog.accept();
    });
    await page.getByRole("button", { name: `Delete monitor ${result.monitor_id}` }).click();
    await monitorRow().waitFor({ state: "detached" });
    if (!asked.includes(group)) fail(`the confirmation did not name the group: ${JSON.stringify(asked)}`);
  });

  await step("log out", async () => {
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("heading", { name: "Log in" }).waitFor();
    await page.reload();
    await page.getByRole("heading", { name: "Log in" }).waitFor();
    if (await page.locator("#app-view").isVisible()) fail("still logged in after logout and reload");
  });

  if (pageErrors.length) {
    current = "page errors";
    fail(`uncaught errors in the page: ${pageErrors.join(" | ")}`);
  }
  result.steps = timings;
  result.total_ms = Date.now() - started;
  console.log(`LAGWATCH_WEB_RESULT ${JSON.stringify(result)}`);
  await browser.close();
  process.exit(0);
} catch (error) {
  const dir = env.LAGWATCH_WEB_ARTIFACTS || fs.mkdtempSync(path.join(os.tmpdir(), "lagwatch-web-"));
  fs.mkdirSync(dir, { recursive: true });
  const shot = path.join(dir, "failure.png");
  try {
    await page.screenshot({ path: shot, fullPage: true });
    fs.writeFileSync(path.join(dir, "failure.txt"), await page.evaluate(() => document.body.innerText));
  } catch (shotError) {
    log(`no screenshot: ${shotError.message}`);
  }
  console.error(`ui.mjs: FAILED at step "${current}": ${error.message}`);
  if (pageErrors.length) console.error(`ui.mjs: page errors: ${pageErrors.join(" | ")}`);
  console.error(`ui.mjs: screenshot and page text in ${dir}`);
  await browser.close().catch(() => {});
  process.exit(1);
}

/** Upper-case hex of the UTF-8 bytes, the dashboards' variable values. */
function hex(text) {
  return Buffer.from(text, "utf8").toString("hex").toUpperCase();
}
