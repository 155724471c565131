// Starts Debian's Chromium through playwright-core from the tools cache (shared by the
// console test and the screenshots). NODE_MODULES: playwright-core's node_modules (ES
// modules ignore NODE_PATH); CHROMIUM: the browser, /usr/bin/chromium by default. The
// flags keep Chromium from calling out: this machine's network is closed.
import { createRequire } from 'node:module';

const { chromium } = createRequire(process.env.NODE_MODULES + '/')('playwright-core');

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}
