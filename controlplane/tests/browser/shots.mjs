// Screenshots of the demo app for docs/img (issue #19, show 6): the pre-join
// screen and a call with a shared screen, the chat and the people list
// open, each at a desktop (1280×720) and a phone (390×844) viewport. Writes
// the PNGs into --out and one JSON object on stdout (what each page showed,
// for the Rust test, controlplane/tests/controlplane/screenshots.rs).
//
//   node shots.mjs --base https://10.1.2.1:8443 --room r --out docs/img

import { cliArgs, logger, openApp, sleep, report } from "./app_page.mjs";

const args = cliArgs();
const log = logger("shots");
const DESKTOP = { width: 1280, height: 720 };
const PHONE = { width: 390, height: 844 };

// What a screenshot shows, to check it is not an empty page, and whether
// anything spills past the viewport's width (unusable on a phone).
function looks(page) {
  return page.evaluate(() => ({
    width: document.documentElement.scrollWidth,
    viewport: window.innerWidth,
    tiles: [...document.querySelectorAll("#grid .tile")].filter((t) => t.getBoundingClientRect().width > 0).length,
    controls_visible: !document.getElementById("controls").hidden,
    preview_width: document.getElementById("preview").videoWidth,
    chat_lines: document.querySelectorAll("#chat-log li").length,
    people: document.querySelectorAll("#people-list li").length,
    screen_tile: !!document.querySelector("#grid .tile.screen"),
    quality: Object.values(window.switchyard.quality || {}).map((q) => ({ height: q.height, fps: q.fps, grade: q.grade, rtt_ms: q.rtt_ms })),
    quality_badges: [...document.querySelectorAll("#grid .tile .quality")].map((b) => b.textContent),
    errors: window.switchyard.errors,
  }));
}

async function shot(page, name, out) {
  const path = `${args.out}/${name}.png`;
  await page.screenshot({ path });
  out[name] = await looks(page);
  log(name, JSON.stringify(out[name]));
}

async function prejoin(browser, viewport, name, out) {
  const page = await (await browser.newContext({ ignoreHTTPSErrors: true, viewport })).newPage();
  await page.goto(`${args.base}/${args.room}?camera=640x360`);
  await page.fill("#name", "Ada");
  await page.waitForFunction(() => document.getElementById("preview").videoWidth > 0, null, { timeout: 15_000 });
  await sleep(500);
  await shot(page, name, out);
  await page.context().close();
}

report([], async (browser, out) => {
  await prejoin(browser, DESKTOP, "app-prejoin-desktop", out);
  await prejoin(browser, PHONE, "app-prejoin-phone", out);
  const query = "&camera=320x180";
  const ada = await openApp(browser, { base: args.base, room: args.room, name: "Ada", query, log });
  const bo = await openApp(browser, { base: args.base, room: args.room, name: "Bo", query, log });
  const cy = await openApp(browser, { base: args.base, room: args.room, name: "Cy", query, log, viewport: PHONE });
  for (const p of [ada, bo, cy]) await p.waitForFunction(() => window.switchyard.participants.size === 2, null, { timeout: 20_000 });
  await ada.click("#share-screen");
  for (const p of [bo, cy]) await p.waitForFunction(() => { const v = document.querySelector("#grid .tile.screen video"); return v && v.videoWidth > 0; }, null, { timeout: 20_000 });
  for (const [p, text] of [[ada, "The slides are on my screen now"], [bo, "Looks good — can you zoom into the chart?"], [ada, "Sure, one moment"]]) {
    await p.fill("#chat-text", text);
    await p.press("#chat-text", "Enter");
    await sleep(300);
  }
  await cy.click("#raise-hand");
  for (const p of [bo, cy]) await p.click("#people-toggle");
  // two looks of the quality badges (the second knows the loss)
  await sleep(4500);
  await shot(bo, "app-call-desktop", out);
  await shot(cy, "app-call-phone", out);
});
