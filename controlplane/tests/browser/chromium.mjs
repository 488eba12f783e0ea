// Launches Debian's chromium the way every browser test needs it: headless,
// as root (no sandbox), fake camera and microphone granted without a prompt,
// autoplay with sound, and the test server's self-signed certificate.
import { chromium } from "playwright-core";

export function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
      ...extraArgs,
      // for a person chasing a problem: e.g. "--enable-logging
      // --log-file=/tmp/chromium.log --vmodule=*p2p*=2"
      ...(process.env.CHROMIUM_EXTRA_ARGS || "").split(" ").filter(Boolean),
      "--autoplay-policy=no-user-gesture-required",
      "--ignore-certificate-errors",
    ],
  });
}
