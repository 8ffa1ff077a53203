// Loads the playground in headless Chromium with an API key, runs the default query and
// prints the result pane; fails if the query does not answer or the page asked any host
// other than the server. Usage (playwright-core installed with npm, Debian's chromium):
//   node scripts/playground-check.mjs http://127.0.0.1:8080 cmp_live_… [screenshot.png]
import { chromium } from 'playwright-core';

const [base, key, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
const foreign = [];
const origin = new URL(base).origin;
page.on('request', (r) => { if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) foreign.push(r.url()); });
page.on('console', (m) => { if (m.type() === 'error') console.error('console:', m.text()); });
await page.goto(`${base}/playground?key=${encodeURIComponent(key)}`);
await page.waitForSelector('.graphiql-execute-button', { timeout: 20000 });
await page.click('.graphiql-execute-button');
await page.waitForFunction(() => {
  const pane = document.querySelector('.result-window');
  return pane && pane.innerText.includes('"data"');
}, null, { timeout: 20000 });
const result = await page.evaluate(() => document.querySelector('.result-window').innerText);
if (shot) await page.screenshot({ path: shot });
await browser.close();
console.log(result);
if (foreign.length) { console.error('requests to other hosts:', foreign); process.exit(1); }
if (!result.includes('organization')) { console.error('the query did not answer'); process.exit(1); }
