// Plays a recording in headless Chromium and decodes it with Web Audio.
//
// Usage: CALLREC_API_TOKEN=<token> node play.mjs <page-url> <audio-path>
// The token (sent as Authorization: Bearer on every request of the page)
// must allow playback.
// Prints one JSON object: what the <audio> element did (duration, whether
// currentTime advanced, any media error) and the first samples of each
// channel as Chromium's own WAV decoder produced them, at 8 kHz.
import { chromium } from "playwright-core";

const [pageURL, audioPath] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--autoplay-policy=no-user-gesture-required", "--no-first-run", "--disable-component-update", "--disable-sync"],
});
try {
  const token = process.env.CALLREC_API_TOKEN;
  const context = await browser.newContext(token ? { extraHTTPHeaders: { Authorization: "Bearer " + token } } : {});
  const page = await context.newPage();
  await page.goto(pageURL);
  const result = await page.evaluate(async (src) => {
    const out = {};
    // 1. A stock <audio> element plays it: currentTime advances.
    const audio = document.createElement("audio");
    audio.src = src;
    audio.muted = true;
    document.body.appendChild(audio);
    const played = new Promise((resolve) => {
      audio.addEventListener("error", () => resolve(false));
      audio.addEventListener("timeupdate", () => { if (audio.currentTime > 0.5) resolve(true); });
      setTimeout(() => resolve(false), 15000);
    });
    try { await audio.play(); } catch (e) { out.playError = String(e); }
    out.advanced = await played;
    out.currentTime = audio.currentTime;
    out.duration = audio.duration;
    out.mediaError = audio.error ? audio.error.code : 0;
    audio.pause();
    // 2. Chromium's decoder reads what we wrote: decode at 8 kHz, no resampling.
    const buf = await (await fetch(src)).arrayBuffer();
    const ctx = new OfflineAudioContext(2, 8000, 8000);
    const decoded = await ctx.decodeAudioData(buf);
    out.channels = decoded.numberOfChannels;
    out.sampleRate = decoded.sampleRate;
    out.length = decoded.length;
    out.left = Array.from(decoded.getChannelData(0).slice(0, 4000));
    out.right = Array.from(decoded.getChannelData(1).slice(0, 4000));
    return out;
  }, audioPath);
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
