// A Chromium publisher (camera at 1280x720, three simulcast layers) and a
// Chromium receiver (microphone only) in one room; the receiver's wishes
// and network change by steps, and what it decodes is sampled every
// 250 ms with getStats(). One JSON report on stdout; the Rust test
// (controlplane/tests/controlplane/simulcast.rs) judges.
//
//   node simulcast.mjs --base https://10.1.2.1:8443 --room r --scenario switch|lowhigh|bandwidth
//     [--role both|pub|rx] [--pub-region A --rx-region B] [--codec h264]
//
// switch:    max height 180, then 720, then 10 switches 2 s apart (camera
//            at 15 fps).
// lowhigh:   from 720, max height 180, then 720, each held 8 s once reached.
// bandwidth: runs until stdin says "done"; the test shapes the path
//            between the "limit" and "lift" lines it writes to stdin.
// --role pub runs only the publisher (until stdin closes), --role rx only
// the receiver, so that each can live in its own network namespace.
// --pub-region / --rx-region: each one's region (the app's ?region=).
// --codec: the publisher's camera codec (the app's ?codec=).

import { launch } from "./chromium.mjs";
import * as readline from "node:readline";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, v, i, a) => (i % 2 === 0 ? [...acc, [v.replace(/^--/, ""), a[i + 1]]] : acc), []),
);
const log = (...m) => console.error(`[simulcast ${new Date().toISOString().slice(11, 23)}]`, ...m);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// What the receiver decodes of the (only) remote video, right now (and,
// with a publisher in the script, `sent`: what it sends of its top layer).
function sample(page) {
  return page.evaluate(async () => {
    const s = window.switchyard;
    if (!s || !s.pc) return { t: performance.now(), frames: 0 };
    const stats = await s.pc.getStats();
    let v = null;
    stats.forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "video" && (r.framesDecoded || 0) > 0) v = r;
    });
    if (!v) return { t: performance.now(), frames: 0 };
    const codec = v.codecId && stats.get(v.codecId);
    return {
      t: performance.now(),
      codec: codec ? codec.mimeType : null,
      ssrc: v.ssrc,
      frames: v.framesDecoded,
      height: v.frameHeight || 0,
      freezes: v.freezeCount || 0,
      freeze_s: v.totalFreezesDuration || 0,
      lost: v.packetsLost || 0,
      received: v.packetsReceived || 0,
      keyframes: v.keyFramesDecoded || 0,
      plis: v.pliCount || 0,
      errors: s.errors.length,
    };
  });
}

// What the publisher sends of its top layer right now: height, frame
// rate and why it is limited (Chromium lowers it when its CPU or its
// estimate falls short), so a report tells the SFU's part from the
// sender's.
function sent(page) {
  return page.evaluate(async () => {
    const s = window.switchyard;
    if (!s || !s.pc) return null;
    const stats = await s.pc.getStats();
    let f = null;
    stats.forEach((r) => {
      if (r.type === "outbound-rtp" && r.kind === "video" && r.rid === "f") f = r;
    });
    if (!f) return null;
    return { height: f.frameHeight || 0, fps: f.framesPerSecond || 0, limit: f.qualityLimitationReason || "none" };
  });
}

async function main() {
  // switch: the fake camera at 15 fps. At its default rate, one publisher
  // encoding three layers and one receiver on two cores leave Chromium's
  // encoder short of CPU: it drops the top layer to 540 lines and its frame
  // rate to 4–9 around each keyframe the switches ask for, and the receiver
  // sees those gaps as freezes that are the sender's, not the SFU's.
  const camera = args.scenario === "switch" ? ["--use-fake-device-for-media-stream=fps=15"] : [];
  const browser = await launch(camera);
  const out = { samples: [], marks: [] };
  const mark = (what) => {
    out.marks.push({ what, at: out.samples.length });
    log(what);
  };
  try {
    const open = async (name, query) => {
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 720 } });
      const page = await ctx.newPage();
      page.on("pageerror", (e) => log(`${name} page error: ${e.message}`));
      await page.goto(`${args.base}/${args.room}?name=${name}${query}`);
      return page;
    };
    const region = (r) => (r ? `&region=${encodeURIComponent(r)}` : "");
    const codec = args.codec ? `&codec=${encodeURIComponent(args.codec)}` : "";
    const [pubQuery, rxQuery] = [`${region(args["pub-region"])}${codec}`, `&video=0${region(args["rx-region"])}`];
    const role = args.role || "both";
    if (role === "pub") {
      await open("Pub", pubQuery);
      log("publishing");
      const lines = readline.createInterface({ input: process.stdin });
      for await (const line of lines) if (line.trim() === "done") break;
      return;
    }
    const pub = role === "both" ? await open("Pub", pubQuery) : null;
    const rx = await open("Rx", rxQuery);
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const s = await sample(rx);
        if (pub) s.sent = await sent(pub);
        out.samples.push(s);
        await sleep(250);
      }
    })();
    const until = async (what, f, seconds) => {
      const end = Date.now() + seconds * 1000;
      while (Date.now() < end) {
        const s = out.samples[out.samples.length - 1];
        if (s && f(s)) return true;
        await sleep(100);
      }
      log(`timed out: ${what}`);
      return false;
    };
    await until("first frames", (s) => s.frames > 30, 60);
    if (pub) {
      // the browser enables its 720p layer when its own estimate and CPU
      // allow; the scenario measures the SFU, so it starts from there
      const end = Date.now() + 120_000;
      while (Date.now() < end) {
        const full = await pub.evaluate(async () => {
          const st = await window.switchyard.pc.getStats();
          let ok = false;
          st.forEach((r) => {
            if (r.type === "outbound-rtp" && r.rid === "f" && (r.frameHeight || 0) >= 720 && (r.framesPerSecond || 0) > 5) ok = true;
          });
          return ok;
        });
        if (full) break;
        await sleep(500);
      }
      mark("publisher sends 720p");
    }
    if (args.scenario === "lowhigh") {
      // from the top layer, so that both steps are switches (a receiver
      // whose tile is small starts on the low layer already)
      await rx.evaluate(() => window.switchyard.setMaxHeight(720));
      mark("start 720");
      await until("height for the start", (s) => s.height >= 720, 30);
      mark("started 720");
      await sleep(2000);
      for (const h of [180, 720]) {
        await rx.evaluate((h) => window.switchyard.setMaxHeight(h), h);
        mark(`max_height ${h}`);
        await until(`height for ${h}`, (s) => (h === 180 ? s.height > 0 && s.height <= 180 : s.height >= 720), 20);
        mark(`reached ${h}`);
        // long enough for 100 frames of a low layer Chromium's software
        // H.264 encodes at 15–20 fps on two cores
        await sleep(8000);
      }
      mark("end");
    } else if (args.scenario === "switch") {
      for (const [i, h] of [180, 720, 180, 720, 180, 720, 180, 720, 180, 720, 180, 720].entries()) {
        await rx.evaluate((h) => window.switchyard.setMaxHeight(h), h);
        mark(`max_height ${h}`);
        // the first two steps wait for the layer; the switches are paced
        if (i < 2) await until(`height for ${h}`, (s) => (h === 180 ? s.height > 0 && s.height <= 180 : s.height >= 720), 20);
        await sleep(2000);
      }
      await sleep(1000);
    } else {
      await rx.evaluate(() => window.switchyard.setMaxHeight(720));
      await until("high layer", (s) => s.height >= 720, 30);
      mark("ready");
      // the test limits the path, then lifts it, then says done
      const lines = readline.createInterface({ input: process.stdin });
      for await (const line of lines) {
        mark(line.trim());
        if (line.trim() === "done") break;
      }
    }
    sampling = false;
    await sampler;
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  log(`failed: ${e.stack || e}`);
  process.exit(1);
});
