// Drives callrec's web UI in headless Chromium as three people would:
//
//  1. compliance: lands on /, is sent to /login, signs in, searches by agent,
//     opens a call, plays it (currentTime must advance), changes the speed,
//     mutes the agent, exports the call with a reason (the download is saved),
//     signs out;
//  2. supervisor (one team): opens another team's call by its URL (refused:
//     403 and the "not allowed" message), searches, and searches for the
//     other team's agent;
//  3. auditor: lands on /audit, filters the trail by each event type, and
//     verifies the hash chain.
//
// Screenshots of the login, search, call and audit pages (1280 px wide;
// the whole page, but the first screen only of the audit trail) go to
// cfg.screenshots. The script decides nothing: it prints one JSON object of
// what it saw on stdout, and the Go test (cmd/callrec/browser_test.go)
// checks it. Progress and browser errors go to stderr.
//
// Usage: node ui.mjs '<config JSON>'
//   {base, screenshots, downloads, reason, agent, otherAgent, openID, deniedID,
//    compliance: {user, password}, supervisor: {…}, auditor: {…},
//    auditTypes: ["login_ok", …]}
import path from "node:path";
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.argv[2]);
const TIMEOUT = 20000;
const log = (...a) => console.error("ui.mjs:", ...a);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--autoplay-policy=no-user-gesture-required", "--no-first-run", "--disable-component-update", "--disable-sync"],
});
const out = { pageErrors: [], screenshots: {} };
let current = null; // the page in use, described when a step fails

// newPage opens a fresh browser context (its own cookies) for one person.
async function newPage(who) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true, timezoneId: "UTC", locale: "en-US" });
  const page = await ctx.newPage();
  current = page;
  page.setDefaultTimeout(TIMEOUT);
  page.on("pageerror", (err) => { out.pageErrors.push(`${who}: ${err.message}`); log(`${who} page error:`, err.message); });
  page.on("console", (m) => { if (m.type() === "error") log(`${who} console:`, m.text()); });
  return { ctx, page };
}

const pathOf = (page) => { const u = new URL(page.url()); return u.pathname + u.search; };

async function shot(page, name, fullPage = true) {
  const file = path.join(cfg.screenshots, name);
  await page.screenshot({ path: file, fullPage });
  out.screenshots[name] = file;
}

// signIn fills the login form (the page must be /login) and waits until the
// browser has left it.
async function signIn(page, who) {
  await page.waitForSelector("#login-form");
  await page.fill('#login-form input[name="username"]', who.user);
  await page.fill('#login-form input[name="password"]', who.password);
  await Promise.all([
    page.waitForURL((u) => u.pathname !== "/login"),
    page.click("#login-button"),
  ]);
  await page.waitForFunction(() => document.getElementById("user-name").textContent !== "");
  return {
    user: await page.textContent("#user-name"),
    role: await page.textContent("#user-role"),
  };
}

// searchRows waits for the search results and lists them.
async function searchRows(page) {
  await page.waitForSelector("#results[data-state=done]");
  return {
    count: await page.textContent("#result-count"),
    rows: await page.$$eval("#results tr.result-row", (trs) => trs.map((tr) => ({
      id: tr.dataset.id,
      agents: [...tr.querySelectorAll(".agent")].map((a) => a.textContent),
      status: (tr.querySelector(".col-status [data-status]") || {}).dataset?.status || "",
      hasLink: Boolean(tr.querySelector("a.open-call")),
    }))),
  };
}

// search submits the search form with one filter and waits for the results.
async function search(page, name, value) {
  await page.fill(`#search-form [name="${name}"]`, value);
  await Promise.all([
    page.waitForURL((u) => u.searchParams.get(name) === value),
    page.click("#search-button"),
  ]);
  return searchRows(page);
}

const audioState = (page) => page.$eval("#audio", (a) => ({
  currentTime: a.currentTime, duration: a.duration, paused: a.paused, playbackRate: a.playbackRate,
  mediaError: a.error ? a.error.code : 0, readyState: a.readyState,
}));

// waitAdvance waits (by polling in the page, no fixed sleep) until the
// audio's currentTime is more than by seconds past from.
async function waitAdvance(page, from, by) {
  await page.waitForFunction(([t0, d]) => document.getElementById("audio").currentTime - t0 > d, [from, by], { timeout: TIMEOUT });
  return audioState(page);
}

async function compliance() {
  const { ctx, page } = await newPage("compliance");
  const r = {};
  await page.goto(cfg.base + "/");
  await page.waitForURL((u) => u.pathname === "/login");
  r.redirect = pathOf(page);
  await shot(page, "login.png");
  r.session = await signIn(page, cfg.compliance);
  r.afterLogin = pathOf(page);
  r.all = await searchRows(page);

  log("compliance: search by agent");
  r.byAgent = await search(page, "agent", cfg.agent);
  r.searchURL = pathOf(page);
  await shot(page, "search.png");

  log("compliance: open call", cfg.openID);
  await Promise.all([
    page.waitForURL((u) => u.pathname === "/calls/" + cfg.openID),
    page.click(`#results tr.result-row[data-id="${cfg.openID}"] a.open-call`),
  ]);
  await page.waitForSelector("#call-view", { state: "visible" });
  await page.waitForSelector("#waveform[data-drawn=true]");
  await page.waitForFunction(() => document.getElementById("audio").readyState >= 1); // metadata: the duration
  const c = {};
  c.customer = await page.textContent("#call-customer");
  c.status = await page.$eval("#call-status [data-status]", (e) => e.dataset.status);
  c.meta = await page.textContent("#call-meta");
  c.timeline = await page.$$eval("#timeline li.timeline-entry", (lis) => lis.map((li) => li.dataset.kind));
  c.accounting = await page.$$eval("#accounting section.acct", (ss) => ss.map((s) => ({
    inum: s.dataset.inum, summary: (s.querySelector(".acct-summary") || {}).textContent || "",
  })));
  c.segments = await page.$$eval("#segments .seg-agent .agent", (as) => as.map((a) => a.textContent));
  c.ids = await page.$$eval("#ids .id-value", (vs) => vs.map((v) => v.textContent));
  c.waveform = await page.$eval("#waveform", (cv) => {
    // Count the pixels painted in the lanes' waveform colours: a drawn
    // waveform of speech paints many.
    const g = cv.getContext("2d");
    const d = g.getImageData(0, 0, cv.width, cv.height).data;
    let painted = 0;
    for (let i = 0; i < d.length; i += 4) {
      const [R, G, B] = [d[i], d[i + 1], d[i + 2]];
      if (B > 150 && R < 150 && G < 150) painted++; // the blue and purple fills
    }
    return { width: cv.width, height: cv.height, painted, drawn: cv.dataset.drawn };
  });

  log("compliance: play");
  c.before = await audioState(page);
  await page.click("#play");
  c.playing = await waitAdvance(page, c.before.currentTime, 0.5);
  c.playLabel = await page.textContent("#play .play-label");
  await page.selectOption("#speed", "1.5");
  c.rate = (await audioState(page)).playbackRate;
  await page.check("#mute-agent");
  c.muteAgent = await page.isChecked("#mute-agent");
  c.muteCustomer = await page.isChecked("#mute-customer");
  c.afterMute = await waitAdvance(page, c.playing.currentTime, 0.3);
  c.position = await page.textContent("#position");
  await page.click("#play"); // pause, so the screenshot's playhead holds still
  await page.waitForFunction(() => document.getElementById("audio").paused);
  c.paused = await audioState(page);
  await shot(page, "call.png");

  log("compliance: export");
  await page.click("#export");
  await page.waitForSelector("#export-form", { state: "visible" });
  await page.fill('#export-form input[name="reason"]', cfg.reason);
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-confirm")]);
  const e = { suggested: download.suggestedFilename() };
  e.file = path.join(cfg.downloads, e.suggested);
  await download.saveAs(e.file);
  e.failure = await download.failure();
  await page.waitForSelector("#export-status.ok");
  e.status = await page.textContent("#export-status");
  e.shown = await page.textContent("#export-file");
  r.call = c;
  r.export = e;

  await Promise.all([page.waitForURL((u) => u.pathname === "/login"), page.click("#logout")]);
  r.afterLogout = pathOf(page);
  await ctx.close();
  return r;
}

async function supervisor() {
  const { ctx, page } = await newPage("supervisor");
  const r = {};
  await page.goto(cfg.base + "/login");
  r.session = await signIn(page, cfg.supervisor);
  r.afterLogin = pathOf(page);
  r.all = await searchRows(page);

  log("supervisor: open the other team's call", cfg.deniedID);
  const api = page.waitForResponse((res) => new URL(res.url()).pathname === "/api/interactions/" + cfg.deniedID);
  await page.goto(cfg.base + "/calls/" + cfg.deniedID);
  r.deniedStatus = (await api).status();
  await page.waitForSelector("#call-loading.placeholder-error");
  r.deniedError = await page.textContent("#error .error-message");
  r.deniedErrorVisible = await page.isVisible("#error");
  r.deniedPlaceholder = await page.textContent("#call-loading");
  r.callViewVisible = await page.isVisible("#call-view");

  await page.goto(cfg.base + "/");
  r.otherAgent = await search(page, "agent", cfg.otherAgent);
  await ctx.close();
  return r;
}

async function auditor() {
  const { ctx, page } = await newPage("auditor");
  const r = { byType: {} };
  await page.goto(cfg.base + "/login");
  r.session = await signIn(page, cfg.auditor);
  r.afterLogin = pathOf(page);
  await page.waitForSelector("#audit-results[data-state=done]");
  r.navSearchVisible = await page.isVisible("#nav-search");

  for (const type of cfg.auditTypes) {
    await page.selectOption('#audit-form [name="type"]', type);
    await Promise.all([
      page.waitForURL((u) => u.searchParams.get("type") === type),
      page.click("#audit-button"),
    ]);
    await page.waitForSelector("#audit-results[data-state=done]");
    r.byType[type] = await page.$$eval("#audit-results tr.audit-row", (trs) => trs.map((tr) => ({
      type: tr.dataset.type,
      seq: Number(tr.dataset.seq),
      actor: tr.querySelector(".actor").firstChild.textContent,
      // An entry without target shows a muted "—".
      target: tr.querySelector(".col-target > .muted") ? "" : tr.querySelector(".col-target").textContent,
      reason: tr.querySelector(".col-reason").textContent,
    })));
  }

  await Promise.all([page.waitForURL((u) => u.search === ""), page.click("#audit-reset")]);
  await page.waitForSelector("#audit-results[data-state=done]");
  r.count = await page.textContent("#audit-count");
  await page.click("#verify");
  await page.waitForSelector("#verify-status.ok, #verify-status.bad");
  r.verify = {
    class: await page.getAttribute("#verify-status", "class"),
    text: await page.textContent("#verify-status"),
  };
  await shot(page, "audit.png", false); // the newest entries: the story, not the test's own API calls

  // The search page is not for auditors: it sends them back to the trail.
  await page.goto(cfg.base + "/");
  await page.waitForURL((u) => u.pathname === "/audit");
  r.searchRedirect = pathOf(page);
  await ctx.close();
  return r;
}

try {
  out.compliance = await compliance();
  out.supervisor = await supervisor();
  out.auditor = await auditor();
} catch (err) {
  out.error = String(err && err.stack || err);
  if (current && !current.isClosed()) {
    const banner = await current.textContent("#error .error-message", { timeout: 1000 }).catch(() => "");
    out.error += `\n(at ${current.url()}; error banner: ${JSON.stringify(banner)})`;
  }
  log(out.error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
