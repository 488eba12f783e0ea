// A moderator in the demo app (issue #19, show 3), driven through its pages
// as people would: M joins with a moderator's room token, B and C with
// plain ones (small cameras). B, not a moderator, tries to remove C: refused
// (`forbidden`), shown to B, nothing happens to C. M presses "Mute mic" on
// B in the people list: B's page says so and its microphone goes quiet;
// then B's page turns its track back on without telling the server (as a
// client that ignores the request would): C must still get nothing of B's
// audio — the server holds it. M presses "Remove" on C: C's page says it
// was removed and stays out; M and B see C leave. One JSON object on stdout;
// the Rust test (controlplane/tests/controlplane/moderator.rs) judges.
//
//   node moderator.mjs --base https://10.1.2.1:8443 --room r --tokens M=<jwt>,B=<jwt>,C=<jwt>

import { cliArgs, logger, openApp, sleep, report } from "./app_page.mjs";

const args = cliArgs();
const log = logger("moderator");
const tokens = Object.fromEntries(args.tokens.split(",").map((kv) => kv.split("=")));

// In C's page: packets received so far of B's microphone.
function audioFrom(page, name) {
  return page.evaluate(async (name) => {
    const s = window.switchyard;
    const p = [...s.participants.values()].find((p) => p.name === name);
    if (!p || !s.pc) return null;
    const src = [...p.sources.values()].find((x) => x.kind === "audio");
    let n = null;
    (await s.pc.getStats()).forEach((r) => r.type === "inbound-rtp" && src && r.mid === src.mid && (n = r.packetsReceived));
    return n;
  }, name);
}

// Packets of B's microphone C received over `ms`.
async function audioRate(page, ms) {
  const a = await audioFrom(page, "B");
  await sleep(ms);
  return (await audioFrom(page, "B")) - a;
}

function view(page) {
  return page.evaluate(() => {
    const s = window.switchyard;
    return {
      me: s.me,
      moderator: s.moderator,
      left: s.left,
      removed_by: s.removedBy ?? null,
      refusals: s.refusals || [],
      force_muted: (s.forceMuted || []).map((m) => ({ kind: m.kind, name: m.name })),
      notices: s.notices || [],
      people: [...document.querySelectorAll("#people-list li")].map((li) => li.textContent),
      moderate_buttons: document.querySelectorAll("#people-list button.moderate").length,
      mic_enabled: s.local.getAudioTracks().map((t) => t.enabled),
      mic_pressed: document.getElementById("mute-audio").getAttribute("aria-pressed"),
      errors: s.errors,
      participants: [...s.participants.values()].map((p) => p.name),
      status: document.getElementById("status").textContent,
    };
  });
}

report([], async (browser, out) => {
  const pages = {};
  for (const name of ["M", "B", "C"]) {
    pages[name] = await openApp(browser, { base: args.base, room: args.room, name, query: `&camera=320x180&token=${tokens[name]}`, log });
  }
  const { M, B, C } = pages;
  for (const p of Object.values(pages)) await p.waitForFunction(() => window.switchyard.participants.size === 2, null, { timeout: 20_000 });
  // C hears B before anything
  await C.waitForFunction(() => window.switchyard.pc && window.switchyard.pc.connectionState === "connected", null, { timeout: 20_000 });
  await sleep(2000);
  out.before = await audioRate(C, 2000);
  for (const p of Object.values(pages)) await p.click("#people-toggle");

  // B is no moderator: its list has no buttons, and asking anyway is refused
  const cId = await C.evaluate(() => window.switchyard.me);
  await B.evaluate((id) => window.switchyard.moderate("remove", id), cId);
  await B.waitForFunction(() => (window.switchyard.refusals || []).length > 0, null, { timeout: 5_000 });
  await sleep(500);
  out.B_refused = await view(B);
  out.C_after_refusal = await view(C);

  // M mutes B's microphone from the people list
  const bId = await B.evaluate(() => window.switchyard.me);
  const bRow = `#people-list li[data-participant="${bId}"]`;
  await M.click(`${bRow} button.moderate.mute >> nth=0`);
  await B.waitForFunction(() => (window.switchyard.forceMuted || []).length > 0, null, { timeout: 5_000 });
  await sleep(700);
  out.during_mute = await audioRate(C, 2000);
  out.B_muted = await view(B);
  out.M_sees_B = (await view(M)).people;
  // B's page turns its track on again behind the server's back: still held
  await B.evaluate(() => window.switchyard.local.getAudioTracks().forEach((t) => (t.enabled = true)));
  await sleep(500);
  out.bypass = await audioRate(C, 2000);
  // B unmutes with its own button: heard again
  await B.evaluate(() => window.switchyard.local.getAudioTracks().forEach((t) => (t.enabled = false)));
  await B.click("#mute-audio");
  await sleep(1000);
  out.after_unmute = await audioRate(C, 2000);

  // M removes C
  const cRow = `#people-list li[data-participant="${cId}"]`;
  await M.click(`${cRow} button.moderate.remove`);
  await C.waitForFunction(() => window.switchyard.removedBy, null, { timeout: 5_000 });
  await M.waitForFunction(() => window.switchyard.participants.size === 1, null, { timeout: 5_000 });
  await B.waitForFunction(() => window.switchyard.participants.size === 1, null, { timeout: 5_000 });
  // C stays out (no reconnect, no rejoin)
  await sleep(3000);
  out.C_removed = await view(C);
  out.C_removed.reconnects = await C.evaluate(() => (window.switchyard.reconnects || 0) + (window.switchyard.rejoins || 0));
  out.M_after = await view(M);
  out.B_after = await view(B);
});
