// Drives the call page of callrec's web UI in headless Chromium on calls
// whose streams were recorded twice, merged from a dual-stream pair, or
// restarted after a failure:
//
//  1. signs in (the page must be /login) and opens cfg.mergedID: which
//     recording plays, the replica box, the supply strip under the waveform
//     (pixels painted in each copy's colour) and its legend, the copies
//     table; then switches to the twin replica and reads the box again;
//  2. opens cfg.restartID: the restart gap in the timeline (shaded entry)
//     and in the overview bar above it;
//  3. searches by task SID for cfg.restartID: the gap flag of its row.
//
// The script decides nothing: it prints one JSON object of what it saw on
// stdout, and the Go test (consolidation/web/browser_test.go) checks it.
// Console errors (a CSP refusal among them) and page errors are reported.
//
// Usage: node streams.mjs '<config JSON>'
//   {base, user, password, mergedID, restartID, screenshots}
import path from "node:path";
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.argv[2]);
const TIMEOUT = 20000;
const t0 = Date.now();
const log = (...a) => console.error(`streams.mjs: +${Date.now() - t0} ms`, ...a);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--autoplay-policy=no-user-gesture-required", "--no-first-run", "--disable-component-update", "--disable-sync"],
});
const out = { pageErrors: [], consoleErrors: [] };
let page = null;

// audioINUM is the INUM whose audio the player has loaded.
const audioINUM = () => page.$eval("#audio", (a) => decodeURIComponent(new URL(a.src).pathname.split("/")[3] || ""));

// replicaBox reads the replica box above the waveform.
const replicaBox = () => page.$eval("#replica-box", (b) => ({
  hidden: b.hidden, replica: b.dataset.replica || "", plays: b.dataset.plays || "",
  text: b.querySelector(".replica-text")?.textContent || "",
  switches: [...b.querySelectorAll("button.replica-switch")].map((x) => ({ inum: x.dataset.inum, replica: x.dataset.replica, disabled: x.disabled })),
}));

async function merged() {
  const r = {};
  await page.goto(cfg.base + "/calls/" + cfg.mergedID);
  await page.waitForSelector("#call-view", { state: "visible" });
  await page.waitForSelector("#waveform[data-drawn=true]");
  await page.waitForSelector("#supply[data-drawn=true]");
  r.plays = await audioINUM();
  r.selected = await page.$eval("#recording-select", (s) => s.value);
  r.box = await replicaBox();
  r.supply = await page.$eval("#supply", (cv) => {
    // Pixels painted in each copy's colour (read from the stylesheet, as
    // the page does).
    const css = getComputedStyle(document.documentElement);
    const rgb = (c) => {
      const x = document.createElement("canvas").getContext("2d");
      x.fillStyle = c;
      const h = x.fillStyle.replace("#", "");
      return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
    };
    const colors = [1, 2, 3, 4].map((k) => rgb(css.getPropertyValue(`--copy-${k}`).trim()));
    const d = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
    const byCopy = {};
    for (let i = 0; i < d.length; i += 4) {
      colors.forEach((c, k) => {
        if (Math.abs(d[i] - c[0]) < 8 && Math.abs(d[i + 1] - c[1]) < 8 && Math.abs(d[i + 2] - c[2]) < 8) {
          byCopy[k + 1] = (byCopy[k + 1] || 0) + 1;
        }
      });
    }
    return { width: cv.width, height: cv.height, hidden: cv.hidden, runs: Number(cv.dataset.runs), byCopy };
  });
  r.legend = await page.$$eval("#supply-legend [data-copy]", (xs) => xs.map((x) => x.textContent));
  r.copies = await page.$$eval(`#accounting section.acct[data-inum="${r.plays}"] tr.copy-row`, (trs) => trs.map((tr) =>
    [...tr.children].map((td) => td.textContent.trim())));
  r.timeline = await page.$$eval("#timeline li.timeline-entry", (lis) => lis.map((li) => li.dataset.kind));
  await page.screenshot({ path: path.join(cfg.screenshots, "call-merged.png"), fullPage: true });

  log("switch replica");
  const target = r.box.switches[0] && r.box.switches[0].inum;
  await page.click("#replica-box button.replica-switch");
  await page.waitForFunction((n) => decodeURIComponent(new URL(document.getElementById("audio").src).pathname.split("/")[3]) === n, target);
  r.switched = { plays: await audioINUM(), box: await replicaBox(), selected: await page.$eval("#recording-select", (s) => s.value) };
  return r;
}

async function restarted() {
  const r = {};
  await page.goto(cfg.base + "/calls/" + cfg.restartID);
  await page.waitForSelector("#call-view", { state: "visible" });
  await page.waitForSelector("#waveform[data-drawn=true]");
  r.timelineGaps = await page.$$eval("#timeline li.timeline-gap", (lis) => lis.map((li) => ({
    kind: li.dataset.kind, lost: li.querySelector(".tl-lost")?.textContent || "",
    shaded: getComputedStyle(li.querySelector(".tl-row")).backgroundImage.includes("gradient"),
  })));
  r.overview = await page.$eval("#call-overview", (b) => ({
    hidden: b.hidden,
    recs: [...b.querySelectorAll(".ov-rec")].map((x) => x.dataset.inum),
    gaps: [...b.querySelectorAll(".ov-gap")].map((g) => ({
      durationMs: Number(g.dataset.durationMs), from: g.dataset.from, to: g.dataset.to,
      width: g.getBoundingClientRect().width, left: g.getBoundingClientRect().left - b.querySelector(".ov-bar").getBoundingClientRect().left,
    })),
    barWidth: b.querySelector(".ov-bar")?.getBoundingClientRect().width || 0,
    lost: b.querySelector(".ov-lost")?.textContent || "",
  }));
  r.supplyHidden = await page.$eval("#supply", (cv) => cv.hidden);
  r.replicaHidden = await page.$eval("#replica-box", (b) => b.hidden);
  await page.screenshot({ path: path.join(cfg.screenshots, "call-restart.png"), fullPage: true });

  await page.goto(cfg.base + "/?task_sid=" + encodeURIComponent(cfg.restartID));
  await page.waitForSelector("#results[data-state=done]");
  r.searchFlag = await page.$$eval(`#results tr.result-row[data-id="${cfg.restartID}"] .gap-flag`, (xs) => xs.map((x) => ({
    gapMs: Number(x.dataset.gapMs), text: x.textContent,
  })));
  return r;
}

try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: "UTC", locale: "en-US" });
  page = await ctx.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("pageerror", (err) => { out.pageErrors.push(err.message); log("page error:", err.message); });
  page.on("console", (m) => { if (m.type() === "error") { out.consoleErrors.push(m.text()); log("console:", m.text()); } });
  await page.goto(cfg.base + "/login");
  await page.waitForSelector("#login-form");
  await page.fill('#login-form input[name="username"]', cfg.user);
  await page.fill('#login-form input[name="password"]', cfg.password);
  await Promise.all([page.waitForURL((u) => u.pathname !== "/login"), page.click("#login-button")]);
  out.consoleErrors = []; // the login page's own 401 (no session yet) is expected
  log("merged call", cfg.mergedID);
  out.merged = await merged();
  log("restarted call", cfg.restartID);
  out.restarted = await restarted();
} catch (err) {
  out.error = String(err && err.stack || err);
  if (page && !page.isClosed()) out.error += `\n(at ${page.url()})`;
  log(out.error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
