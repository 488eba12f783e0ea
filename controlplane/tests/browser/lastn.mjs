// Four headless Chromium, each with its own fake microphone (a WAV file),
// in one room: three publish camera and microphone, one (the receiver)
// only its microphone. After a while in which the WAV files make some of
// them speak, reports what the receiver decodes from each of the others
// over the last seconds. One JSON object on stdout; the Rust test
// (controlplane/tests/controlplane/lastn.rs) judges.
//
//   node lastn.mjs --base https://10.1.2.1:8443 --room r \
//     --people S1=/tmp/s1.wav,S2=/tmp/s2.wav,S3=/tmp/quiet.wav --receiver R=/tmp/quiet.wav --seconds 30

import { launch } from "./chromium.mjs";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, v, i, a) => (i % 2 === 0 ? [...acc, [v.replace(/^--/, ""), a[i + 1]]] : acc), []),
);
const log = (...m) => console.error(`[lastn ${new Date().toISOString().slice(11, 23)}]`, ...m);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function person(name, wav, query) {
  const browser = await launch([`--use-file-for-fake-audio-capture=${wav}`]);
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 960, height: 540 } });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => log(`${name} page error: ${e.message}`));
  await page.goto(`${args.base}/${args.room}?name=${name}${query}`);
  return { browser, page };
}

// Per remote participant: video frames decoded and audio packets, now.
function counts(page) {
  return page.evaluate(async () => {
    const s = window.switchyard;
    if (!s || !s.pc) return {};
    const stats = await s.pc.getStats();
    const byMid = new Map();
    stats.forEach((r) => {
      if (r.type === "inbound-rtp" && r.mid !== undefined) byMid.set(r.mid, r);
    });
    const out = {};
    for (const p of s.participants.values()) {
      const c = { video_frames: 0, audio_packets: 0 };
      for (const src of p.sources.values()) {
        const st = byMid.get(src.mid);
        if (!st) continue;
        if (st.kind === "video") c.video_frames += st.framesDecoded || 0;
        else c.audio_packets += st.packetsReceived || 0;
      }
      out[p.name] = c;
    }
    return out;
  });
}

async function main() {
  const people = args.people.split(",").map((p) => p.split("="));
  const [rxName, rxWav] = args.receiver.split("=");
  const seconds = Number(args.seconds || 30);
  const all = [];
  const out = { dominant: [] };
  try {
    // 640x360 cameras: four Chromium share two cores in CI
    for (const [name, wav] of people) all.push(await person(name, wav, "&camera=640x360"));
    const rx = await person(rxName, rxWav, "&video=0");
    all.push(rx);
    await rx.page.exposeFunction("__dominant", (p) => out.dominant.push(p));
    // the page opens its WebSocket once the microphone is up
    await rx.page.waitForFunction(() => window.switchyard && window.switchyard.ws, null, { timeout: 60_000 });
    await rx.page.evaluate(() => {
      // record dominant-speaker announcements as the receiver sees them
      const ws = window.switchyard.ws;
      ws.addEventListener("message", (ev) => {
        const m = JSON.parse(ev.data);
        if (m.type === "dominant_speaker") {
          const p = window.switchyard.participants.get(m.participant);
          window.__dominant(p ? p.name : m.participant);
        }
      });
    });
    log(`all ${people.length + 1} joined; waiting ${seconds} s`);
    await sleep(seconds * 1000);
    const before = await counts(rx.page);
    await sleep(4000);
    const after = await counts(rx.page);
    out.window = {};
    for (const name of Object.keys(after)) {
      const b = before[name] || { video_frames: 0, audio_packets: 0 };
      out.window[name] = {
        video_frames: after[name].video_frames - b.video_frames,
        audio_packets: after[name].audio_packets - b.audio_packets,
      };
    }
    log(JSON.stringify(out.window));
  } finally {
    for (const p of all) await p.browser.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  log(`failed: ${e.stack || e}`);
  process.exit(1);
});
