// Opens the demo app in headless Debian chromium, one browser context per
// participant, and reports what each one received (from getStats()) as one
// JSON object on stdout. The Rust test (controlplane/tests/controlplane/
// browser.rs) decides pass or fail; this script only measures.
//
//   node call.mjs --base https://10.99.0.1:8443 --room r --names ada,bo,cy \
//     [--remotes 2] [--min-frames 100] [--timeout 90] [--leave cy] [--screenshot out.png] [--hold 5]
//     [--watch 30 --ready-file /tmp/ready] [--regions eu,eu,us]
//
// --remotes: how many remote participants each browser must hear and see
// (default: the other names). --hold: seconds to stay in the call after
// that (for clients outside this script). --watch: once media flows, write
// --ready-file and sample every remote's decoded frames for that many seconds
// (--stall-window S: also the longest stall within the first S seconds),
// --camera WxH: the size the app asks of the (fake) camera, --min-height H:
// also wait until every remote video arrives at least H lines tall (the
// layer the server chose; `waited_s` says how long the wait took), --simulcast 0:
// one encoding per camera (the app's ?simulcast=0), --regions: each
// name's region (the app's ?region=, sent in its join), --first-frames 1:
// also report, per remote, how long after the page's media connected its
// first video frame was decoded (sampled every 100 ms), --no-devices
// n1,n2: those names join without camera and microphone (the app's
// ?devices=0) and are not waited for by the others, --codec vp9: the
// cameras' codec (the app's ?codec=),
// reporting the longest stall (for tests that break the network meanwhile).
// Progress goes to stderr.

import { launch } from "./chromium.mjs";

function args() {
  const a = { remotes: null, minFrames: 100, timeout: 90, leave: null, screenshot: null, hold: 0, watch: 0, readyFile: null, stallWindow: 0 };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (k === "--base") a.base = v;
    else if (k === "--room") a.room = v;
    else if (k === "--names") a.names = v.split(",");
    else if (k === "--remotes") a.remotes = Number(v);
    else if (k === "--min-frames") a.minFrames = Number(v);
    else if (k === "--min-height") a.minHeight = Number(v);
    else if (k === "--timeout") a.timeout = Number(v);
    else if (k === "--leave") a.leave = v;
    else if (k === "--screenshot") a.screenshot = v;
    else if (k === "--hold") a.hold = Number(v);
    else if (k === "--watch") a.watch = Number(v);
    else if (k === "--ready-file") a.readyFile = v;
    else if (k === "--stall-window") a.stallWindow = Number(v);
    else if (k === "--camera") a.camera = v;
    else if (k === "--simulcast") a.simulcast = v;
    else if (k === "--regions") a.regions = v.split(",");
    else if (k === "--first-frames") a.firstFrames = v === "1";
    else if (k === "--no-devices") a.noDevices = v.split(",");
    else if (k === "--codec") a.codec = v;
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.base || !a.room || !a.names) throw new Error("--base, --room and --names are required");
  a.noDevices = a.noDevices || [];
  return a;
}

const log = (...m) => console.error(`[call ${new Date().toISOString().slice(11, 23)}]`, ...m);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// What one page receives, per remote participant, from getStats().
async function received(page) {
  return page.evaluate(async () => {
    const s = window.switchyard;
    if (!s || !s.pc) return { state: "not started", remotes: {} };
    const stats = await s.pc.getStats();
    const byMid = new Map();
    stats.forEach((r) => {
      if (r.type === "inbound-rtp" && r.mid !== undefined) byMid.set(r.mid, r);
    });
    const remotes = {};
    for (const [id, p] of s.participants) {
      const r = {
        name: p.name,
        publishes: p.sources.size > 0,
        video_frames: 0,
        frame_height: 0,
        audio_packets: 0,
        audio_samples: 0,
        tile: !!p.tile.isConnected,
        tile_height: p.tile.clientHeight,
      };
      const ff = window.__firstFrames;
      if (ff && ff[id] && window.__connectedAt) r.first_frame_ms = ff[id] - window.__connectedAt;
      const fp = window.__firstPackets;
      if (fp && fp[id] && window.__connectedAt) r.first_video_packet_ms = fp[id] - window.__connectedAt;
      for (const src of p.sources.values()) {
        const st = src.mid !== undefined ? byMid.get(src.mid) : undefined;
        if (!st) continue;
        if (st.kind === "video") {
          const codec = st.codecId && stats.get(st.codecId);
          if (codec) r.video_codec = codec.mimeType;
          r.video_frames += st.framesDecoded || 0;
          r.frame_height = Math.max(r.frame_height, st.frameHeight || 0);
        } else {
          r.audio_packets += st.packetsReceived || 0;
          r.audio_samples += st.totalSamplesReceived || 0;
        }
      }
      remotes[id] = r;
    }
    // the candidate pair the media took (host, srflx, relay; a TURN
    // relay's protocol to the browser)
    let path = null;
    stats.forEach((r) => {
      if (r.type !== "transport" || !r.selectedCandidatePairId) return;
      const pair = stats.get(r.selectedCandidatePairId);
      const local = pair && stats.get(pair.localCandidateId);
      const remote = pair && stats.get(pair.remoteCandidateId);
      if (local && remote)
        path = { local: local.candidateType, relay_protocol: local.relayProtocol || null, protocol: remote.protocol, remote: remote.candidateType, remote_address: `${remote.address}:${remote.port}` };
    });
    return { state: s.pc.connectionState, me: s.me, errors: s.errors, remotes, path };
  });
}

// In the page: when its media first connected, and when the first video
// frame of each remote participant was decoded (getStats every 100 ms, for
// a minute).
function trackFirstFrames() {
  window.__firstFrames = {};
  window.__firstPackets = {};
  const until = Date.now() + 60_000;
  const tick = async () => {
    const s = window.switchyard;
    if (s && s.pc) {
      const up = (s.connectionLog || []).find((e) => e[1] === "connected");
      if (up && !window.__connectedAt) window.__connectedAt = up[0];
      const decoding = new Set();
      const receiving = new Set();
      (await s.pc.getStats()).forEach((r) => {
        if (r.type !== "inbound-rtp" || r.kind !== "video" || r.mid === undefined) return;
        if (r.framesDecoded > 0) decoding.add(r.mid);
        if (r.packetsReceived > 0) receiving.add(r.mid);
      });
      for (const [id, p] of s.participants) {
        const video = [...p.sources.values()].filter((src) => src.kind === "video");
        if (!window.__firstPackets[id] && video.some((src) => receiving.has(src.mid))) window.__firstPackets[id] = Date.now();
        if (!window.__firstFrames[id] && video.some((src) => decoding.has(src.mid))) window.__firstFrames[id] = Date.now();
      }
    }
    if (Date.now() < until) setTimeout(tick, 100);
  };
  tick();
}

// Samples decoded frames per remote every 250 ms for --watch seconds after
// writing --ready-file; the longest time without a new frame, per remote.
async function watch(pages, a) {
  const { writeFileSync } = await import("node:fs");
  if (a.readyFile) writeFileSync(a.readyFile, "media flows\n");
  const last = {};
  const report = {};
  const started = Date.now();
  report.started_at = started;
  const until = started + a.watch * 1000;
  while (Date.now() < until) {
    const now = Date.now();
    for (const [name, page] of Object.entries(pages)) {
      const rx = await received(page);
      for (const [id, r] of Object.entries(rx.remotes)) {
        const key = `${name}<-${id}`;
        const seen = last[key] || { frames: r.video_frames, at: now, first: r.video_frames, firstAudio: r.audio_packets, raw: r.video_frames, rawAudio: r.audio_packets, offset: 0, offsetAudio: 0 };
        // a new peer connection (media moved) counts from zero again
        if (r.video_frames < seen.raw) seen.offset += seen.raw;
        if (r.audio_packets < seen.rawAudio) seen.offsetAudio += seen.rawAudio;
        seen.raw = r.video_frames;
        seen.rawAudio = r.audio_packets;
        const frames = seen.offset + r.video_frames;
        const audio = seen.offsetAudio + r.audio_packets;
        if (frames > seen.frames) {
          seen.frames = frames;
          seen.at = now;
        }
        last[key] = seen;
        const entry = report[key] || { stall_ms: 0 };
        // the longest stall within the first --stall-window seconds
        if (a.stallWindow > 0 && now - started <= a.stallWindow * 1000) {
          entry.stall_window_ms = Math.max(entry.stall_window_ms || 0, now - seen.at);
        }
        if (now - seen.at > entry.stall_ms) {
          entry.stall_ms = now - seen.at;
          // when the longest stall began, ms after the watch began
          entry.stall_from_ms = seen.at - started;
        }
        entry.frames_gained = frames - seen.first;
        entry.audio_gained = audio - seen.firstAudio;
        entry.state = rx.state;
        report[key] = entry;
      }
    }
    await sleep(250);
  }
  for (const [name, page] of Object.entries(pages)) {
    const extra = await page.evaluate(async () => {
      const s = window.switchyard;
      // per remote source: its m-line and what arrived on it (for failures)
      const byMid = new Map();
      if (s.pc) (await s.pc.getStats()).forEach((r) => r.type === "inbound-rtp" && r.mid !== undefined && byMid.set(r.mid, r));
      const sources = {};
      for (const [id, p] of s.participants)
        sources[id] = [...p.sources.values()].map((src) => {
          const st = byMid.get(src.mid) || {};
          return { kind: src.kind, mid: src.mid, ssrc: st.ssrc, packets: st.packetsReceived, frames: st.framesDecoded, keyframes: st.keyFramesDecoded, plis: st.pliCount };
        });
      return { sources, moves: s.moves || 0, ice_restarts: s.iceRestarts || 0, resumes: s.resumes || 0, reconnects: s.reconnects || 0, rejoins: s.rejoins || 0, resumed_at: s.resumedAt || null, connection_log: s.connectionLog || [], me: s.me, errors: s.errors };
    });
    report[name] = extra;
  }
  log(`watch: ${JSON.stringify(report)}`);
  return report;
}

// `name` has heard and seen enough of every remote that publishes: --remotes
// of them (by default every other name that joins with devices)
const enough = (rx, a, name) => {
  const want = a.remotes ?? a.names.filter((n) => n !== name && !a.noDevices.includes(n)).length;
  const publishing = Object.values(rx.remotes).filter((r) => r.publishes);
  return (
    rx.state === "connected" &&
    publishing.length >= want &&
    publishing.every((r) => r.video_frames >= a.minFrames && r.audio_packets > 0 && r.audio_samples > 0 && r.frame_height >= (a.minHeight || 0))
  );
};

async function main() {
  const a = args();
  const browser = await launch();
  const out = { participants: {}, left: null, stats_before: null, stats_after: null };
  try {
    const pages = {};
    for (const name of a.names) {
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 720 } });
      const page = await ctx.newPage();
      page.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warning") log(`${name} console ${m.type()}: ${m.text()}`);
      });
      page.on("pageerror", (e) => log(`${name} page error: ${e.message}`));
      const camera = (a.camera ? `&camera=${a.camera}` : "") + (a.simulcast ? `&simulcast=${a.simulcast}` : "");
      const i = a.names.indexOf(name);
      const region = a.regions && a.regions[i] ? `&region=${encodeURIComponent(a.regions[i])}` : "";
      const devices = a.noDevices.includes(name) ? "&devices=0" : "";
      const codec = a.codec ? `&codec=${encodeURIComponent(a.codec)}` : "";
      await page.goto(`${a.base}/${a.room}?name=${encodeURIComponent(name)}${camera}${region}${devices}${codec}`);
      if (a.firstFrames) await page.evaluate(trackFirstFrames);
      pages[name] = page;
      log(`${name} opened the room`);
    }
    const first = pages[a.names[0]];
    out.stats_before = await first.evaluate(() => fetch("/stats").then((r) => r.json()));
    const deadline = Date.now() + a.timeout * 1000;
    let all = {};
    for (;;) {
      all = {};
      for (const name of a.names) all[name] = await received(pages[name]);
      const line = a.names
        .map((n) => `${n}:${all[n].state}[${Object.values(all[n].remotes).map((r) => `${r.name} v${r.video_frames} a${r.audio_packets}`).join(" ")}]`)
        .join("  ");
      log(line);
      if (a.names.every((n) => enough(all[n], a, n))) {
        out.waited_s = Math.round(Date.now() - deadline + a.timeout * 1000) / 1000;
        break;
      }
      if (Date.now() > deadline) {
        log("timed out waiting for media");
        break;
      }
      await sleep(1000);
    }
    out.participants = all;
    if (a.watch > 0) out.watch = await watch(pages, a);
    if (a.hold > 0) {
      log(`holding the call for ${a.hold}s`);
      await sleep(a.hold * 1000);
    }
    // (null when the server is gone: a test may have killed it)
    out.stats_after = await first.evaluate(() => fetch("/stats").then((r) => r.json()).catch(() => null));
    if (a.screenshot) {
      await first.screenshot({ path: a.screenshot });
      log(`screenshot ${a.screenshot}`);
    }
    if (a.leave && pages[a.leave]) {
      const leaverId = all[a.leave].me;
      const stayers = a.names.filter((n) => n !== a.leave);
      // the mids that carry the leaver's video to each of the others
      const mids = {};
      for (const n of stayers) {
        mids[n] = await pages[n].evaluate((id) => {
          const p = window.switchyard.participants.get(id);
          return p ? [...p.sources.values()].filter((s) => s.kind === "video").map((s) => s.mid) : [];
        }, leaverId);
      }
      // frames decoded on those mids, or null once the stream is gone from the stats
      const framesOn = (n) =>
        pages[n].evaluate(async (ms) => {
          const stats = await window.switchyard.pc.getStats();
          let frames = null;
          stats.forEach((r) => {
            if (r.type === "inbound-rtp" && r.kind === "video" && ms.includes(r.mid)) frames = (frames || 0) + (r.framesDecoded || 0);
          });
          return frames;
        }, mids[n]);
      await pages[a.leave].click("#leave");
      log(`${a.leave} (${leaverId}) left`);
      const seenGone = {};
      const until = Date.now() + 10_000;
      while (Date.now() < until && stayers.some((n) => !seenGone[n])) {
        for (const n of stayers) {
          seenGone[n] = await pages[n].evaluate((id) => !window.switchyard.participants.has(id) && !document.querySelector(`[data-participant="${id}"]`), leaverId);
        }
        await sleep(250);
      }
      await sleep(1000);
      const before = {};
      for (const n of stayers) before[n] = await framesOn(n);
      await sleep(2000);
      const after = {};
      const remaining = {};
      for (const n of stayers) {
        after[n] = await framesOn(n);
        remaining[n] = await received(pages[n]);
      }
      out.left = { id: leaverId, seen_gone: seenGone, frames_before: before, frames_after: after, remaining };
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  log(`failed: ${e.stack || e}`);
  process.exit(1);
});
