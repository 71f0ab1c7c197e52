// The /connect journey in a real browser (headless Chromium through
// playwright-core, JavaScript disabled: the page must work without it),
// driven by e2e/connect_browser_test.go, which starts butler serve, the
// development IdP and the Jenkins simulator and makes the MCP calls.
//
// Protocol with the Go test: this script prints "LINKED" once the right
// token is linked and waits for a line "CALLED" on stdin (the agent's
// retried call succeeded); it prints "UNLINKED" at the end. Any failure
// exits non-zero with the reason on stderr. Screenshots at 390 px wide go
// to $ARTIFACTS.
import { chromium } from 'playwright-core';
import readline from 'node:readline';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const connectURL = env('CONNECT_URL');
const user = env('LOGIN_USER');
const wrongToken = env('WRONG_TOKEN');
const rightToken = env('RIGHT_TOKEN');
const artifacts = env('ARTIFACTS');

const lines = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));

const t0 = Date.now();
const step = (what) => console.error(`${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`);

function check(ok, what) {
  if (!ok) throw new Error(what);
}

const browser = await chromium.launch({
  executablePath: env('CHROMIUM'),
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, javaScriptEnabled: false });
  // Generous: CI machines are small and busy.
  context.setDefaultTimeout(90_000);
  context.setDefaultNavigationTimeout(90_000);
  const page = await context.newPage();
  const shot = (name) => page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true });

  // connect_url → the IdP's sign-in → back on the page.
  await page.goto(connectURL);
  await page.locator(`button[name=user][value=${user}]`).click();
  await page.waitForURL(connectURL);
  const text = () => page.locator('main').innerText();
  check((await text()).includes(`Signed in as\n${user}`) || (await text()).includes(user), 'not signed in as the user');
  check((await text()).includes('not linked'), 'the page does not say "not linked"');
  const box = await page.locator('body').boundingBox();
  check(box && box.width <= 390, `the page is wider than the phone (${box && box.width}px)`);
  await shot('01-signed-in');
  step('01-signed-in');

  // Keyboard only: Tab to the token field, type, Enter.
  const typeToken = async (token) => {
    await page.locator('body').focus().catch(() => {});
    let found = false;
    for (let i = 0; i < 30 && !found; i++) {
      await page.keyboard.press('Tab');
      found = (await page.locator('#token:focus').count()) === 1;
    }
    check(found, 'Tab never reaches the token field');
    await page.keyboard.type(token);
    // Wait for the load of the page the POST leads to: waitForLoadState
    // would return at once, the current page being loaded already, and on
    // a busy machine the check would read the old page.
    const loaded = page.waitForEvent('load');
    await page.keyboard.press('Enter');
    await loaded;
  };

  await typeToken(wrongToken);
  check((await text()).includes('Nothing was stored'), 'a wrong token is not refused clearly');
  check(!(await page.content()).includes(wrongToken), 'the wrong token is echoed in the page');
  check((await page.locator('#token').inputValue()) === '', 'the token field is filled in again');
  await shot('02-wrong-token');
  step('02-wrong-token');

  await typeToken(rightToken);
  check((await text()).includes('Your Jenkins token is linked'), 'the right token was not linked');
  check(!(await page.content()).includes(rightToken), 'the token is echoed in the page');
  check(!page.url().includes(rightToken), 'the token is in the URL');
  await shot('03-linked');
  step('03-linked');
  console.log('LINKED');

  check((await nextLine()) === 'CALLED', 'the Go test did not call');
  // Audit records are written by the audit writer a moment after the
  // call answers: reload until the page shows the call and its use.
  const notYet = (t) => t.includes('Last used\nnot yet') || t.includes('Last used\tnot yet');
  let listed = false;
  let used = false;
  for (let i = 0; i < 50 && !(listed && used); i++) {
    await page.goto(connectURL);
    listed = (await page.locator('tr', { hasText: 'get_job' }).filter({ has: page.locator('.dec', { hasText: /^allow$/ }) }).count()) > 0;
    used = !notYet(await text());
    if (!(listed && used)) await new Promise((r) => setTimeout(r, 200));
  }
  check(listed, 'the page does not list the agent\'s call');
  check(used, 'the page does not say when the token was last used');
  await shot('04-call-listed');
  step('04-call-listed');

  const unlinked = page.waitForEvent('load');
  await page.locator('button[value=unlink]').click();
  await unlinked;
  check((await text()).includes('unlinked'), 'unlink did not say so');
  await shot('05-unlinked');
  step('05-unlinked');
  console.log('UNLINKED');

  const signedOut = page.waitForEvent('load');
  await page.locator('button[value=logout]').click();
  await signedOut;
  check((await text()).includes('signed out'), 'sign out did not say so');
} finally {
  await browser.close();
  lines.close();
}
