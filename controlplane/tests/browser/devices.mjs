// Devices in the demo app (issue #19, show 4), driven through its pages as
// people would, with several fake cameras. Before joining, C sees a live preview
// and picks the second camera, and joins sending that one. In the call, A
// switches its camera and then its microphone from the pickers: B must keep
// decoding A's video (frames keep increasing, no stall) and hearing A, with
// no renegotiation (A sends no offer; its tracks are replaced on the same
// senders). One JSON object on stdout; the Rust test
// (controlplane/tests/controlplane/devices.rs) judges.
//
//   node devices.mjs --base https://10.1.2.1:8443 --room r

import { cliArgs, logger, openApp, sleep, report } from "./app_page.mjs";

const args = cliArgs();
const log = logger("devices");

// In B's page: A's video frames decoded and audio packets received.
function fromA(page) {
  return page.evaluate(async () => {
    const s = window.switchyard;
    const a = [...s.participants.values()].find((p) => p.name === "A");
    const out = { frames: 0, audio: 0 };
    if (!a || !s.pc) return out;
    const mids = new Map([...a.sources.values()].map((x) => [x.mid, x.kind]));
    (await s.pc.getStats()).forEach((r) => {
      if (r.type !== "inbound-rtp" || !mids.has(r.mid)) return;
      if (r.kind === "video") {
        out.frames = r.framesDecoded || 0;
        out.video_packets = r.packetsReceived || 0;
        out.keyframes = r.keyFramesDecoded || 0;
        out.size = `${r.frameWidth}x${r.frameHeight}`;
        out.plis = r.pliCount || 0;
      }
      else out.audio = r.packetsReceived || 0;
    });
    return out;
  });
}

// Samples B's view of A every 100 ms for `ms`: the frames and audio gained,
// and the longest time without a new frame.
async function watch(b, ms) {
  const first = await fromA(b);
  let last = first;
  let lastChange = Date.now();
  let stall = 0;
  const until = Date.now() + ms;
  while (Date.now() < until) {
    await sleep(100);
    const now = await fromA(b);
    if (now.frames > last.frames) lastChange = Date.now();
    stall = Math.max(stall, Date.now() - lastChange);
    last = now;
  }
  return { frames: last.frames - first.frames, audio: last.audio - first.audio, longest_stall_ms: stall, video_packets: last.video_packets - first.video_packets, last };
}

function sender(page) {
  return page.evaluate(async () => {
    const s = window.switchyard;
    const layers = [];
    if (s.pc) (await s.pc.getStats()).forEach((r) => r.type === "outbound-rtp" && r.kind === "video" && layers.push({ rid: r.rid, w: r.frameWidth, frames: r.framesEncoded, packets: r.packetsSent, limit: r.qualityLimitationReason, active: r.active }));
    const senders = s.pc ? s.pc.getSenders().filter((x) => x.track) : [];
    return {
      offers_sent: s.offersSent || 0,
      signaling: s.pc && s.pc.signalingState,
      switches: s.deviceSwitches || 0,
      sending: senders.map((x) => x.track.label).sort(),
      local: s.local ? s.local.getTracks().map((t) => t.label).sort() : [],
      errors: s.errors,
      layers,
    };
  });
}

// Picks an option of picker `id` that is not selected (the one labelled
// `label` if given); its label.
function pickOther(page, id, label = null) {
  return page.evaluate(([id, label]) => {
    const select = document.getElementById(id);
    const other = [...select.options].find((o) => !o.selected && (!label || o.textContent === label));
    if (!other) return null;
    select.value = other.value;
    select.dispatchEvent(new Event("change"));
    return other.textContent;
  }, [id, label]);
}

// three fake cameras: Chromium's second one sends 16-bit depth frames
// (Y16), which its encoder does not take (a switch to it sends one frame
// and then nothing, even between two local peer connections); the third
// is an ordinary (MJPEG) camera
report(["--use-fake-device-for-media-stream=device-count=3"], async (browser, out) => {
  const a = await openApp(browser, { base: args.base, room: args.room, name: "A", query: "&camera=320x180", log });
  const b = await openApp(browser, { base: args.base, room: args.room, name: "B", query: "&devices=0", log });
  await b.waitForFunction(() => window.switchyard.participants.size === 1, null, { timeout: 15_000 });
  for (let i = 0; i < 150 && (await fromA(b)).frames < 30; i++) await sleep(200);
  out.before = await watch(b, 2000);
  out.sender_before = await sender(a);

  out.camera_picked = await pickOther(a, "call-camera", "fake_device_2");
  await a.waitForFunction(() => window.switchyard.deviceSwitches >= 1, null, { timeout: 10_000 });
  out.after_camera = await watch(b, 4000);
  out.mic_picked = await pickOther(a, "call-mic");
  await a.waitForFunction(() => window.switchyard.deviceSwitches >= 2, null, { timeout: 10_000 });
  out.after_mic = await watch(b, 3000);
  out.sender_after = await sender(a);
  log("camera", out.camera_picked, JSON.stringify(out.after_camera), "mic", out.mic_picked, JSON.stringify(out.after_mic));

  // the pre-join screen: preview, pickers, and joining with what was picked
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 720 } });
  const c = await ctx.newPage();
  await c.goto(`${args.base}/${args.room}?camera=320x180`);
  await c.waitForFunction(() => document.getElementById("preview").videoWidth > 0, null, { timeout: 15_000 });
  out.prejoin = await c.evaluate(() => ({
    cameras: [...document.getElementById("camera-select").options].map((o) => o.textContent),
    mics: document.getElementById("mic-select").options.length,
    preview_width: document.getElementById("preview").videoWidth,
  }));
  out.prejoin.picked = await pickOther(c, "camera-select", "fake_device_2");
  await c.waitForFunction(() => window.switchyard.deviceSwitches >= 1, null, { timeout: 10_000 });
  out.prejoin.preview_camera = await c.evaluate(() => document.getElementById("preview").srcObject.getVideoTracks()[0].label);
  await c.fill("#name", "C");
  await c.click("#join button[type=submit]");
  await c.waitForFunction(() => window.switchyard.pc && window.switchyard.pc.connectionState === "connected", null, { timeout: 20_000 });
  out.prejoin.sending = (await sender(c)).sending;
});
