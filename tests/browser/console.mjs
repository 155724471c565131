// The console in headless Chromium (driven by tests/console.rs, which starts the service
// on librdkafka's mock cluster). Environment: CONSOLE_URL, CONSOLE_TOKEN, CHROMIUM,
// NODE_MODULES (playwright-core's node_modules), PII (comma-separated strings that must appear nowhere), PII_CUSTOMER, LIVE_CUSTOMER.
// Protocol with the Rust side: this script prints "need-alert" on stdout when the page
// is open, and the test then produces the event that raises LIVE_CUSTOMER's warning.
// Exits non-zero with the failed check on stderr.
import { launch } from './launch.mjs';

const url = process.env.CONSOLE_URL;
const token = process.env.CONSOLE_TOKEN;
const pii = (process.env.PII || '').split(',').filter(Boolean);
const piiCustomer = process.env.PII_CUSTOMER;
const liveCustomer = process.env.LIVE_CUSTOMER;

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
  console.error('ok: ' + what);
}

async function api(path, withToken = true) {
  const r = await fetch(url + path, { headers: withToken ? { Authorization: 'Bearer ' + token } : {} });
  return { status: r.status, body: r.status === 200 ? await r.json() : null };
}

async function noPii(page, where) {
  const html = await page.content();
  const text = await page.evaluate(() => document.body.innerText);
  for (const p of pii) check(!html.includes(p) && !text.includes(p), `no personal data (${p}) on ${where}`);
}

const browser = await launch();
try {
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
  page.setDefaultTimeout(30000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));

  // 1. Without a token the console shows no data and asks for one; the API refuses.
  await page.goto(url + '/');
  await page.waitForSelector('#token-panel:not([hidden])');
  check(await page.locator('#locked').isVisible(), 'the console asks for a token and shows no data');
  check(await page.locator('#inbox tbody tr').count() === 0, 'no inbox rows without a token');
  check((await api('/v1/warnings', false)).status === 401, '/v1/warnings answers 401 without a token');
  check((await api('/v1/alerts/stream', false)).status === 401, 'the alert stream answers 401 without a token');
  await page.fill('#token-input', 'not-the-token');
  await page.click('#token-form button');
  await page.waitForSelector('#token-error:not([hidden])');
  check(await page.locator('#inbox tbody tr').count() === 0, 'a wrong token shows no data');

  // 2. With the token: the inbox lists the open warnings the API reports.
  await page.fill('#token-input', token);
  await page.click('#token-form button');
  await page.waitForSelector('#inbox');
  const all = (await api('/v1/warnings')).body;
  check(all.count > 0, `the API reports open warnings (${all.count})`);
  const shown = await page.$$eval('#inbox tbody tr[data-customer]', (rs) => rs.map((r) => r.dataset.customer));
  check(JSON.stringify(shown) === JSON.stringify(all.warnings.map((w) => w.customer_id)),
    `the inbox lists the API's ${all.count} open warnings in the API's order (by due time)`);
  const overdue = await page.locator('#inbox tbody tr.overdue').count();
  check(overdue === all.warnings.filter((w) => w.overdue).length, `overdue rows are marked (${overdue})`);
  await noPii(page, 'the inbox');

  // 3. Filtering by owner.
  check(all.owners.length >= 2, `warnings of several owners (${all.owners.join(', ')})`);
  const owner = all.owners.find((o) => all.warnings.filter((w) => w.owner === o).length >= 1);
  await page.selectOption('#f-owner', owner);
  await page.waitForFunction((o) => location.hash.includes('owner=' + o) && document.querySelectorAll('#inbox tbody tr[data-customer]').length > 0
    && [...document.querySelectorAll('#inbox tbody tr[data-customer]')].every((r) => r.dataset.owner === o), owner);
  const byOwner = (await api('/v1/warnings?owner=' + encodeURIComponent(owner))).body;
  const rows = await page.$$eval('#inbox tbody tr[data-customer]', (rs) => rs.map((r) => r.dataset.customer));
  check(rows.length === byOwner.count && byOwner.count < all.count && byOwner.warnings.every((w) => w.owner === owner),
    `filtering by owner ${owner} shows that owner's ${byOwner.count} warnings`);

  // 4. A customer page shows the same facts as /v1/customers/{id}.
  // A customer with orders, so that P(alive) and CLV have values to compare.
  const id = rows.find((r) => byOwner.warnings.find((w) => w.customer_id === r && w.tier !== 'regular')) || rows[0];
  await page.click(`#inbox tbody tr[data-customer="${id}"] a`);
  await page.waitForSelector(`#customer[data-customer="${id}"]`);
  const c = (await api('/v1/customers/' + encodeURIComponent(id))).body;
  const want = {
    customer_id: c.customer_id,
    tier: c.tier,
    tier_since: c.tier_since,
    peak_tier: c.peak_tier,
    'warning.level': c.warning.level,
    'facts.p_alive': c.facts.p_alive,
    'facts.clv': c.facts.clv,
    'facts.lifetime_orders': c.facts.lifetime_orders,
    'facts.lifetime_value': c.facts.lifetime_value,
    'facts.recency_days': c.facts.recency_days,
    'facts.churn_risk_index': c.facts.churn_risk_index,
    'facts.account_manager': c.facts.account_manager,
    'standing.value_tier': c.standing && c.standing.value_tier,
  };
  for (const w of c.facts.windows) {
    for (const k of ['orders', 'monetary', 'visits', 'complaints', 'satisfaction']) want[`windows.${w.days}.${k}`] = w[k];
  }
  const got = await page.$$eval('[data-field]', (es) => Object.fromEntries(es.map((e) => [e.dataset.field, e.dataset.value])));
  if (c.warning.level !== 'low' && c.warning.task && c.warning.task.status) want['warning.task.status'] = c.warning.task.status;
  for (const [k, v] of Object.entries(want)) {
    const s = v === null || v === undefined ? '' : String(v);
    check(got[k] === s, `customer page ${k} = ${s} (page: ${got[k]})`);
  }
  const reasons = await page.locator('.reasons li').count();
  check(reasons === c.warning.reasons.length, `the page lists the warning's ${reasons} reasons`);
  check(await page.locator('#history-chart').count() === 1, 'the customer page has the orders and visits chart');
  await noPii(page, 'a customer page');

  // The customer who sent a name, a phone number and an e-mail address.
  await page.goto(url + '/#/customer/' + encodeURIComponent(piiCustomer));
  await page.waitForSelector(`#customer[data-customer="${piiCustomer}"]`);
  await noPii(page, "the page of the customer whose events carried personal data");
  const raw = JSON.stringify((await api('/v1/customers/' + encodeURIComponent(piiCustomer))).body);
  for (const p of pii) check(!raw.includes(p), `no personal data (${p}) in /v1/customers/${piiCustomer}`);

  // 5. Overview: the report's figures.
  await page.goto(url + '/#/overview');
  await page.waitForSelector('#overview');
  const report = (await api('/v1/report')).body;
  const ov = await page.$$eval('[data-field]', (es) => Object.fromEntries(es.map((e) => [e.dataset.field, e.dataset.value])));
  for (const k of ['customers', 'active_customers', 'repurchase_rate', 'nps']) {
    const v = report.overall[k];
    check(ov['overall.' + k] === (v === null ? '' : String(v)), `overview ${k} = /v1/report's ${v}`);
  }
  check(ov['overall.warnings_open.high'] === String(report.overall.warnings_open.high), 'overview open high warnings = /v1/report');
  check(await page.locator('#tiers-chart, #warnings-chart').count() >= 1, 'the overview has its charts');
  await noPii(page, 'the overview');

  // 6. A new alert appears without a reload.
  await page.goto(url + '/#/inbox');
  await page.waitForSelector('#inbox');
  await page.waitForSelector('#live-state.on');
  const marker = await page.evaluate(() => { window.__notReloaded = true; return true; });
  console.log('need-alert');
  await page.waitForSelector(`#feed li[data-customer="${liveCustomer}"][data-kind="churn_warning"]`);
  check(true, `the live feed shows ${liveCustomer}'s new warning`);
  await page.waitForSelector(`#inbox tbody tr[data-customer="${liveCustomer}"]`);
  check(await page.evaluate(() => window.__notReloaded === true) && marker, 'the inbox gained the row without a reload');
  await noPii(page, 'the inbox after the live alert');

  // 7. Acknowledge from the inbox: an `intervention` event goes to the input topic (the
  // Rust side checks it there), and the warning's status follows once it is consumed.
  const row = `#inbox tbody tr[data-customer="${liveCustomer}"]`;
  await page.click(`${row} button[data-action="acknowledged"]`);
  await page.waitForFunction((r) => (document.querySelector(r + ' .action-note') || {}).textContent === 'acknowledged sent', row);
  check(true, `acknowledging ${liveCustomer} from the inbox was accepted`);
  console.log('acknowledged ' + liveCustomer);
  // The service consumes the intervention event: the row's status follows, as the API's.
  await page.waitForSelector(`${row}[data-status="acknowledged"]`);
  const after = (await api('/v1/warnings')).body.warnings.find((w) => w.customer_id === liveCustomer);
  check(after && after.status === 'acknowledged', `the warning of ${liveCustomer} is acknowledged (API: ${after && after.status})`);
  const prof = (await api('/v1/customers/' + liveCustomer)).body;
  check(prof.warning.task.actor === 'default', `the task names the token as the actor (${prof.warning.task.actor})`);

  check(errors.length === 0, 'no script errors: ' + errors.join('; '));
  console.log('all browser checks passed');
} finally {
  await browser.close();
}
