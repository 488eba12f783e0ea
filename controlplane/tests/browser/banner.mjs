// Opens the demo page and reports the server-configuration warnings it
// shows (the red banner), as one JSON object on stdout. The Rust test
// (controlplane/tests/controlplane/exposure.rs) judges.
//
//   node banner.mjs <page url> [screenshot.png]

import { launch } from "./chromium.mjs";

const [url, shot] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.newPage();
  await page.goto(url, { timeout: 30_000 });
  const box = page.locator("#server-warnings");
  let visible = true;
  try {
    await box.waitFor({ state: "visible", timeout: 15_000 });
  } catch {
    visible = false;
  }
  const text = visible ? await box.innerText() : "";
  if (shot) await page.screenshot({ path: shot });
  console.log(JSON.stringify({ visible, text }));
} finally {
  await browser.close();
}
