// Drives the collector's console in Debian's headless Chromium and prints what it saw as
// one JSON object on stdout; collector/tests/console.rs starts the collector, runs this,
// and makes the assertions (so a failure names the values on both sides).
//
// Environment: CONSOLE_URL, OPERATOR, TOKEN, DEVICE (a pseudonym with data), SHOTS (a
// directory for the screenshots), CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`missing environment variable ${name}`);
  return v;
};
const base = env('CONSOLE_URL');
const device = env('DEVICE');
const shots = env('SHOTS');
const profile = mkdtempSync(join(tmpdir(), 'assent-chromium-'));

const out = {
  consoleErrors: [], expectedErrors: [], pageErrors: [], dialogs: [], requestsElsewhere: [],
};
// While true, console errors are the ones a step causes on purpose (a refused form
// answers 400, which Chromium reports as a failed resource load).
let expectingError = false;

// Flags from the stack notes: without the networking ones Chromium keeps trying the
// (closed) network.
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run',
  ],
  httpCredentials: { username: env('OPERATOR'), password: env('TOKEN') },
  viewport: { width: 1100, height: 900 },
});
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error') (expectingError ? out.expectedErrors : out.consoleErrors).push(m.text());
  });
  page.on('pageerror', (e) => out.pageErrors.push(String(e)));
  page.on('dialog', async (d) => { out.dialogs.push(d.message()); await d.dismiss(); });
  page.on('request', (r) => { if (!r.url().startsWith(base)) out.requestsElsewhere.push(r.url()); });

  // Overview: every bar's numbers, the totals, the headers.
  const overview = await page.goto(base + '/');
  out.overviewStatus = overview.status();
  out.csp = overview.headers()['content-security-policy'] || null;
  out.charts = await page.$$eval('svg.chart', (svgs) => svgs.map((svg) => ({
    id: svg.id,
    bars: [...svg.querySelectorAll('rect[data-value]')].map((r) => ({
      series: r.getAttribute('data-series'),
      day: r.getAttribute('data-day'),
      value: Number(r.getAttribute('data-value')),
      height: Number(r.getAttribute('height') || r.getAttribute('width')),
    })),
  })));
  out.totals = await page.$$eval('.totals strong', (s) => Object.fromEntries(s.map((e) => [e.id, Number(e.textContent)])));
  out.overviewErasureBy = await page.$$eval('table.erasures td.by', (t) => t.map((e) => e.textContent));
  await page.screenshot({ path: join(shots, 'console-overview.png'), fullPage: true });

  // Device page: hostile strings must be text, nothing may run.
  const devicePage = await page.goto(`${base}/devices/${device}`);
  out.deviceStatus = devicePage.status();
  out.deviceText = await page.evaluate(() => document.body.innerText);
  out.payloads = await page.$$eval('pre.payload', (p) => p.map((e) => ({ category: e.dataset.category, text: e.textContent })));
  out.imgCount = await page.evaluate(() => document.querySelectorAll('img').length);
  out.scriptCount = await page.evaluate(() => document.querySelectorAll('script').length);
  out.pwned = await page.evaluate(() => window.__pwned === 1);
  out.heldBefore = await page.$$eval('#held tr', (rows) => rows.slice(1).map((r) => [r.cells[0].textContent, Number(r.cells[1].textContent)]));
  await page.screenshot({ path: join(shots, 'console-device.png'), fullPage: true });

  // Erase: the first POST only asks for confirmation.
  await Promise.all([page.waitForNavigation(), page.click('#erase')]);
  out.confirmUrl = page.url();
  out.confirmEvents = Number(await page.textContent('#confirm-events'));
  await page.screenshot({ path: join(shots, 'console-erase-confirm.png'), fullPage: true });
  await page.goto(`${base}/devices/${device}`);
  out.heldAfterConfirmPage = await page.$$eval('#held tr', (rows) => rows.slice(1).map((r) => [r.cells[0].textContent, Number(r.cells[1].textContent)]));

  // A wrong confirmation erases nothing.
  await Promise.all([page.waitForNavigation(), page.click('#erase')]);
  await page.fill('#confirm', 'not-the-pseudonym');
  expectingError = true;
  const wrong = await Promise.all([page.waitForNavigation(), page.click('#erase-confirmed')]);
  out.wrongConfirmStatus = wrong[0] ? wrong[0].status() : null;
  out.wrongConfirmText = await page.textContent('#problem');
  expectingError = false;
  await page.goto(`${base}/devices/${device}`);
  out.heldAfterWrongConfirm = await page.$$eval('#held tr', (rows) => rows.slice(1).map((r) => [r.cells[0].textContent, Number(r.cells[1].textContent)]));

  // The real thing.
  await Promise.all([page.waitForNavigation(), page.click('#erase')]);
  await page.fill('#confirm', device);
  await Promise.all([page.waitForNavigation(), page.click('#erase-confirmed')]);
  out.afterEraseUrl = page.url();
  out.notice = await page.textContent('#notice');
  out.heldAfterErase = await page.$$eval('#held tr', (rows) => rows.slice(1).map((r) => [r.cells[0].textContent, Number(r.cells[1].textContent)]));
  out.deviceErasures = await page.$$eval('table.erasures tr', (rows) => rows.slice(1).map((r) => [...r.cells].map((c) => c.textContent)));
  await page.screenshot({ path: join(shots, 'console-device-erased.png'), fullPage: true });

  // A cross-site form post (a page elsewhere submitting to the console) is refused.
  const forged = await page.request.post(`${base}/devices/${device}/erase`, {
    form: { csrf: '00', scope: 'all', confirm: device },
    headers: { Origin: 'http://evil.example' },
  });
  out.forgedStatus = forged.status();
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out) + '\n');
