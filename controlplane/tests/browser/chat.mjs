// Chat in the demo app (issue #19, show 2), driven through its page as a
// person would: A, B and C join a room (without camera and microphone: the
// chat needs none); A types a message with markup in it; B and C must show it
// as text. Then A floods the chat and must see the notice that the server
// refused the rest; D joins late and must see the room's last messages. One
// JSON object on stdout; the Rust test (controlplane/tests/controlplane/chat.rs)
// judges.
//
//   node chat.mjs --base https://10.1.2.1:8443 --room r

import { cliArgs, logger, openApp, report } from "./app_page.mjs";

const args = cliArgs();
const log = logger("chat");

const MARKUP = 'hello <script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> & welcome';

const open = (browser, name) => openApp(browser, { base: args.base, room: args.room, name, query: "&devices=0", log });

// Types `text` into the page's chat box and sends it, as a person would.
async function say(page, text) {
  await page.fill("#chat-text", text);
  await page.press("#chat-text", "Enter");
}

// What a page shows and knows of its chat.
function seen(page) {
  return page.evaluate(() => ({
    lines: [...document.querySelectorAll("#chat-log li")].map((li) => li.textContent),
    chat: window.switchyard.chat,
    scripts_in_log: document.querySelectorAll("#chat-log script, #chat-log img").length,
    pwned: window.pwned ?? null,
    notice: document.getElementById("chat-notice").hidden ? null : document.getElementById("chat-notice").textContent,
    errors: window.switchyard.errors,
  }));
}

report([], async (browser, out) => {
  const [a, b, c] = [await open(browser, "A"), await open(browser, "B"), await open(browser, "C")];
  // let each see the others before anyone speaks
  for (const p of [a, b, c]) await p.waitForFunction(() => window.switchyard.participants.size >= 2, null, { timeout: 15_000 });
  await say(a, MARKUP);
  for (const [name, page] of [["B", b], ["C", c]]) {
    await page.waitForFunction((t) => window.switchyard.chat.some((l) => l.text === t), MARKUP, { timeout: 5_000, polling: 10 });
  }
  const sentAt = (await seen(a)).chat.find((l) => l.mine && l.text === MARKUP).at;
  out.delivery_ms = {};
  for (const [name, page] of [["B", b], ["C", c]]) {
    const s = await seen(page);
    out[name] = s;
    out.delivery_ms[name] = s.chat.find((l) => l.text === MARKUP).at - sentAt;
  }
  // a flood: twelve messages as fast as the page takes them
  for (let i = 0; i < 12; i++) await say(a, `flood ${i}`);
  await a.waitForFunction(() => !document.getElementById("chat-notice").hidden, null, { timeout: 5_000 });
  await new Promise((r) => setTimeout(r, 1000));
  out.A = await seen(a);
  out.B_after_flood = await seen(b);
  // a late joiner
  const d = await open(browser, "D");
  await d.waitForFunction(() => window.switchyard.chat.length > 0, null, { timeout: 5_000 });
  out.D = await seen(d);
});
