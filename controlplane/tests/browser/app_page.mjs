// What the scripts that drive the demo app as a person would share: their
// `--key value` arguments, a progress log on stderr, opening the app as one
// participant (its own browser context, joined, signalling open), and the
// report they print for the Rust test beside them.

import { launch } from "./chromium.mjs";

export function cliArgs() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  return out;
}

export function logger(tag) {
  return (...m) => console.error(`[${tag} ${new Date().toISOString().slice(11, 23)}]`, ...m);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Opens `base`/`room` as `name` (`query`: more of the app's URL options,
// e.g. "&devices=0") and waits until it joined.
export async function openApp(browser, { base, room, name, query = "", viewport = { width: 1280, height: 720 }, log }) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => log && log(`${name} page error: ${e.message}`));
  await page.goto(`${base}/${room}?name=${name}${query}`);
  await page.waitForFunction(() => window.switchyard.me && !document.getElementById("chat").hidden, null, { timeout: 30_000 });
  return page;
}

// Runs `body(browser, out)` in a Chromium started with `extraArgs`, then
// prints `out` as one JSON line on stdout — with `error` when the body
// threw, so that the Rust test shows what was measured up to there.
export async function report(extraArgs, body) {
  const browser = await launch(extraArgs);
  const out = {};
  try {
    await body(browser, out);
  } catch (e) {
    out.error = String(e);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
}
