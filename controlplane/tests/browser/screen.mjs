// Screen sharing in the demo app (issue #19, show 1), driven through its
// page as a person would: A, B and C join a room with small cameras; A
// presses "Share screen" (Chromium's fake display capture, 1280×720). B and
// C must decode the screen at its full width on a tile of its own while
// A's camera goes on; A stops with the app's button, shares again, and
// stops the way the browser's own "Stop sharing" does (the track ends):
// each time the screen's tile must leave B's and C's pages. One JSON object
// on stdout; the Rust test (controlplane/tests/controlplane/screen.rs)
// judges.
//
//   node screen.mjs --base https://10.1.2.1:8443 --room r

import { cliArgs, logger, openApp, sleep, report } from "./app_page.mjs";

const args = cliArgs();
const log = logger("screen");

// In a receiving page: A's screen and camera as received (from getStats by
// m-line), and whether the screen's tile is shown.
function received(page) {
  return page.evaluate(async () => {
    const s = window.switchyard;
    const a = [...s.participants.values()].find((p) => p.name === "A");
    const out = { screen_frames: 0, screen_width: 0, camera_frames: 0, tile: false, tile_width: 0, errors: s.errors };
    if (!a || !s.pc) return out;
    const byMid = new Map();
    (await s.pc.getStats()).forEach((r) => r.type === "inbound-rtp" && r.mid !== undefined && byMid.set(r.mid, r));
    for (const [id, src] of a.sources) {
      const st = src.kind === "video" && byMid.get(src.mid);
      if (!st) continue;
      if (src.content === "screen") {
        out.screen_frames = st.framesDecoded || 0;
        out.screen_width = st.frameWidth || 0;
        out.screen_source = id;
      } else {
        out.camera_frames = st.framesDecoded || 0;
      }
    }
    const tile = document.querySelector(`.tile.screen[data-participant="${a.id}"]`);
    out.tile = !!tile;
    out.tile_width = tile ? tile.querySelector("video").videoWidth : 0;
    out.pinned = s.pinned;
    return out;
  });
}

// Waits until every page in `pages` satisfies `ok` (polled every 100 ms),
// returning when each did (ms since the epoch) and what it last saw.
async function until(pages, ok, timeoutMs) {
  const done = {};
  const seen = {};
  const deadline = Date.now() + timeoutMs;
  while (Object.keys(done).length < Object.keys(pages).length && Date.now() < deadline) {
    for (const [name, page] of Object.entries(pages)) {
      if (done[name]) continue;
      seen[name] = await received(page);
      if (ok(seen[name])) done[name] = Date.now();
    }
    await sleep(100);
  }
  return { done, seen };
}

// One share: A starts it, B and C decode `frames` of it; A stops it with
// `stop` ("button" or "ended"); the time each tile took to go.
async function share(a, receivers, frames, stop, out) {
  const before = {};
  for (const [name, page] of Object.entries(receivers)) before[name] = (await received(page)).camera_frames;
  await a.click("#share-screen");
  const started = Date.now();
  const shown = await until(receivers, (r) => r.tile && r.screen_frames >= frames && r.screen_width >= 1280 && r.tile_width >= 1280, 40_000);
  const result = { stop, shown_ms: {}, seen: shown.seen, camera_frames_during: {} };
  for (const name of Object.keys(receivers)) {
    result.shown_ms[name] = shown.done[name] ? shown.done[name] - started : null;
    result.camera_frames_during[name] = shown.seen[name].camera_frames - before[name];
  }
  result.sent = await a.evaluate(async () => {
    const t = window.switchyard.screen && window.switchyard.screen.transceiver;
    let r = null;
    if (t) (await t.sender.getStats()).forEach((s) => s.type === "outbound-rtp" && (r = { width: s.frameWidth, fps: s.framesPerSecond, frames: s.framesEncoded }));
    return r;
  });
  log(`${stop}: shown`, JSON.stringify(result.shown_ms), "sent", JSON.stringify(result.sent));
  const stopped = await a.evaluate((how) => {
    const s = window.switchyard;
    // "ended": what the browser's own "Stop sharing" does to the track
    if (how === "ended") s.screen.track.dispatchEvent(new Event("ended"));
    else document.getElementById("share-screen").click();
    return Date.now();
  }, stop);
  const gone = await until(receivers, (r) => !r.tile && !r.screen_source, 10_000);
  result.removed_ms = {};
  for (const name of Object.keys(receivers)) result.removed_ms[name] = gone.done[name] ? gone.done[name] - stopped : null;
  result.after = gone.seen;
  result.a_tile_left = await a.evaluate(() => !document.querySelector('.tile.screen[data-key="my-screen"]') && !window.switchyard.screen);
  log(`${stop}: removed`, JSON.stringify(result.removed_ms));
  out.shares.push(result);
}

report([], async (browser, out) => {
  Object.assign(out, { shares: [] });
  const query = "&camera=320x180";
  const pages = {};
  for (const name of ["A", "B", "C"]) pages[name] = await openApp(browser, { base: args.base, room: args.room, name, query, log });
  // everyone sees everyone's camera first
  const receivers = { B: pages.B, C: pages.C };
  const cams = await until(receivers, (r) => r.camera_frames >= 30, 40_000);
  out.cameras_first = cams.done;
  await share(pages.A, receivers, 50, "button", out);
  await share(pages.A, receivers, 20, "ended", out);
  out.a_errors = await pages.A.evaluate(() => window.switchyard.errors);
});
