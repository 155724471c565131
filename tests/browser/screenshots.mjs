// Screenshots of the console's three pages for the README (scripts/screenshots.sh runs
// it against a running demo). Environment: CONSOLE_URL, OUT_DIR, NODE_MODULES, CHROMIUM.
import { launch } from './launch.mjs';
const url = process.env.CONSOLE_URL;
const out = process.env.OUT_DIR;

const browser = await launch();
try {
  const page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
  page.setDefaultTimeout(30000);
  await page.goto(url + '/#/inbox');
  await page.waitForSelector('#inbox tbody tr[data-customer]');
  await page.waitForSelector('#feed li');
  await page.screenshot({ path: out + '/inbox.png' });
  // The customer page of a high warning (else any) with the most history to show.
  let w = await (await fetch(url + '/v1/warnings?level=high')).json();
  if (!w.warnings.length) w = await (await fetch(url + '/v1/warnings')).json();
  let best = null;
  for (const r of w.warnings.slice(0, 40)) {
    const h = await (await fetch(url + '/v1/customers/' + encodeURIComponent(r.customer_id) + '/history')).json();
    const n = h.days.length;
    if (!best || n > best.n) best = { id: r.customer_id, n };
  }
  await page.goto(url + '/#/customer/' + encodeURIComponent(best.id));
  await page.waitForSelector('#customer');
  await page.screenshot({ path: out + '/customer.png', fullPage: true });
  await page.goto(url + '/#/overview');
  await page.waitForSelector('#overview');
  await page.screenshot({ path: out + '/overview.png', fullPage: true });
  console.error('screenshots written to ' + out);
} finally {
  await browser.close();
}
