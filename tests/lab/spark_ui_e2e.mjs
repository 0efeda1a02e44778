// The Spark UI from the user's browser (issue 18 item 4), in Debian's headless Chromium
// driven by playwright-core: tests/containers/test_containers.py runs it against the
// edgenode container's JupyterLab, through the port the container publishes on this host;
// by itself:
//   LAB_URL=http://127.0.0.1:PORT/ LAB_TOKEN=... node tests/lab/spark_ui_e2e.mjs
// Only the page's DOM is used (the chart's JupyterLab does not expose window.jupyterapp).
//
// Steps, as a user does them: JupyterLab opens with its token; the launcher's
// "PySpark (sparkernel)" tile makes a new notebook; a cell running a Spark job of a few
// seconds is typed and run (Shift+Enter); its progress display shows a "Spark UI" link, which
// is clicked: the tab it opens must be Spark's page for that job, served by JupyterLab's own
// origin under /proxy/<port>/ (jupyter-server-proxy), its scripts and styles loaded from
// there, every link on it under the same prefix; the page's "Stages" tab is followed and
// stays there. Then a fresh browser context (no cookie), and one with a wrong token, open
// the same link: Jupyter's login page, never Spark's. Exits 1 with the reason on the first
// failed check; the last stdout line is `RESULT <json>` with what was seen.
import fs from 'node:fs';
import path from 'node:path';
import { check, env, logger, runInBrowser } from './harness.mjs';

const LAB_URL = env('LAB_URL').replace(/\/?$/, '/');
const ORIGIN = new URL(LAB_URL).origin;
const TOKEN = env('LAB_TOKEN');
const SCREENSHOT = path.resolve(env('LAB_SCREENSHOT', 'out/lab/spark-ui.png'));
const KERNEL_DISPLAY = env('LAB_KERNEL_DISPLAY', 'PySpark (sparkernel)');
const UI_TIMEOUT_MS = 120_000;
// The first cell starts the session (driver JVM, executors on both workers): generous.
const CELL_TIMEOUT_MS = Number(env('LAB_CELL_TIMEOUT_S', '600')) * 1000;
// Four tasks of 2 s on two one-core workers: several seconds, well past the moment the
// kernel shows a job's progress.
const CODE = 'import time; sc.parallelize(range(4), 4).map(lambda x: (time.sleep(2), x)[1]).count()';

const log = logger('spark_ui_e2e');
const t0 = Date.now();
const timings = {};
const mark = (name) => { timings[name] = Number(((Date.now() - t0) / 1000).toFixed(1)); log(name); };

runInBrowser('spark_ui_e2e', SCREENSHOT, log, async (browser, pageErrors) => {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  // Every response and failed request of the Spark UI's pages (other tabs than JupyterLab's).
  const uiTraffic = [];
  let lab = null;
  const fromUi = (r) => { try { return r.frame().page() !== lab; } catch { return false; } };
  context.on('requestfinished', async (r) => {
    if (fromUi(r)) uiTraffic.push({ url: r.url(), status: (await r.response())?.status() ?? 0 });
  });
  context.on('requestfailed', (r) => {
    if (fromUi(r)) uiTraffic.push({ url: r.url(), status: 0, failure: r.failure()?.errorText });
  });
  lab = await context.newPage();
  lab.on('pageerror', (e) => pageErrors.push(e.message));

  // 1. JupyterLab with its token, and the launcher's tile.
  await lab.goto(`${LAB_URL}lab?token=${encodeURIComponent(TOKEN)}`, { timeout: UI_TIMEOUT_MS });
  const tile = lab.locator('.jp-Launcher .jp-LauncherCard[data-category="Notebook"]')
    .filter({ hasText: KERNEL_DISPLAY });
  await tile.first().waitFor({ timeout: UI_TIMEOUT_MS });
  check(await tile.count() === 1, `expected one "${KERNEL_DISPLAY}" notebook tile in the launcher`);
  mark('launcher shows the tile');

  // 2. A new notebook on the kernel, from the tile; wait for the kernel to be idle (the
  //    status bar names it).
  await tile.first().click();
  const panel = lab.locator('.jp-NotebookPanel:not(.lm-mod-hidden)');
  const editor = panel.locator('.jp-Cell .cm-content').first();
  await editor.waitFor({ timeout: UI_TIMEOUT_MS });
  const notebook = (await lab.locator('#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel')
    .first().textContent())?.trim();
  await lab.locator('.jp-StatusBar-Widget', { hasText: `${KERNEL_DISPLAY} | Idle` }).first()
    .waitFor({ timeout: UI_TIMEOUT_MS });
  mark(`new notebook ${notebook}, kernel idle`);

  // 3. The cell, typed and run with Shift+Enter.
  await editor.click();
  await lab.keyboard.insertText(CODE);
  await lab.keyboard.press('Shift+Enter');
  mark('cell run');
  const cell = panel.locator('.jp-CodeCell').first();
  const link = cell.locator('.jp-OutputArea-output a[href*="/jobs/job/?id="]', { hasText: /^Spark UI$/ });
  await link.first().waitFor({ timeout: CELL_TIMEOUT_MS });
  const seenWhile = ((await link.first().locator('xpath=ancestor::*[contains(@class,"jp-OutputArea-output")]')
    .textContent()) ?? '').replace(/\s+/g, ' ').trim();
  const firstStatus = /\b(RUNNING|SUCCEEDED|FAILED|UNKNOWN)\b/.exec(seenWhile)?.[1] ?? '?';
  mark(`progress display shown (${firstStatus}): ${seenWhile.slice(0, 100)}`);
  // Done: an execution count in the prompt, and the result.
  await lab.waitForFunction((node) => /\[\d+\]/.test(node.querySelector('.jp-InputPrompt')?.textContent ?? ''),
    await cell.elementHandle(), { timeout: CELL_TIMEOUT_MS });
  const errors = await cell.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    .allTextContents();
  check(!errors.some((t) => /Traceback|Error/.test(t)), `the cell failed: ${errors.join('\n').slice(0, 2000)}`);
  const result = (await cell.locator('.jp-OutputArea-executeResult').textContent()) ?? '';
  check(/\b4\s*$/.test(result), `the cell's result is ${JSON.stringify(result)}, not 4`);
  await lab.waitForTimeout(1000); // the display's last update
  const display = ((await link.last().locator('xpath=ancestor::*[contains(@class,"jp-OutputArea-output")]')
    .textContent()) ?? '').replace(/\s+/g, ' ').trim();
  check(/SUCCEEDED/.test(display) && /4\/4 tasks/.test(display),
    `the progress display did not end SUCCEEDED with 4/4 tasks: ${display}`);
  const href = await link.last().getAttribute('href');
  const m = /^\/proxy\/(\d+)\/jobs\/job\/\?id=(\d+)$/.exec(href ?? '');
  check(m, `the "Spark UI" link is ${JSON.stringify(href)}, not /proxy/<port>/jobs/job/?id=<job>`);
  const [, port, job] = m;
  const prefix = `/proxy/${port}/`;
  mark(`cell done (${result.trim()}), link ${href}`);

  // 4. The link, clicked: a new tab with the job's page, through JupyterLab's origin.
  const [ui] = await Promise.all([context.waitForEvent('page', { timeout: UI_TIMEOUT_MS }), link.last().click()]);
  ui.on('pageerror', (e) => pageErrors.push(`spark ui: ${e.message}`));
  await ui.waitForLoadState('networkidle', { timeout: UI_TIMEOUT_MS });
  const opened = new URL(ui.url());
  check(opened.origin === ORIGIN && opened.pathname === `${prefix}jobs/job/` && opened.search === `?id=${job}`,
    `the link opened ${ui.url()}, not ${ORIGIN}${href}`);
  await ui.getByText(`Details for Job ${job}`).first().waitFor({ timeout: 30_000 });
  const title = await ui.title();
  const text = (await ui.locator('body').innerText()).replace(/\s+/g, ' ');
  check(/Status: SUCCEEDED/i.test(text), `the job's page does not say SUCCEEDED: ${text.slice(0, 600)}`);
  mark(`Spark UI tab: ${ui.url()} (${title})`);

  // Every link of the page (resolved by the browser) stays under the proxy on this origin;
  // everything the page loaded came from there and loaded.
  const links = await ui.$$eval('a[href]', (as) => as.map((a) => ({ raw: a.getAttribute('href'), abs: a.href })));
  const outside = links.filter((l) => /^https?:/.test(l.abs) && !l.abs.startsWith(`${ORIGIN}${prefix}`));
  check(links.length > 5 && outside.length === 0,
    `${outside.length} of the job page's ${links.length} links leave ${prefix}: ${JSON.stringify(outside.slice(0, 10))}`);
  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await ui.screenshot({ path: SCREENSHOT, fullPage: true });
  const loaded = uiTraffic.slice();
  const foreign = loaded.filter((r) => !r.url.startsWith(`${ORIGIN}${prefix}`));
  const failed = loaded.filter((r) => r.status === 0 || r.status >= 400);
  check(loaded.length > 1 && foreign.length === 0 && failed.length === 0,
    `the job page loaded ${loaded.length} URLs; outside ${prefix}: ${JSON.stringify(foreign.slice(0, 10))}; ` +
    `failed: ${JSON.stringify(failed.slice(0, 10))}`);
  mark(`job page: ${links.length} links and ${loaded.length} loads, all under ${ORIGIN}${prefix}`);

  // 5. One of Spark's own links, followed in that tab: the Stages tab.
  await ui.locator('a', { hasText: /^\s*Stages\s*$/ }).first().click();
  await ui.waitForURL((u) => u.pathname === `${prefix}stages/`, { timeout: 30_000 });
  await ui.getByText('Stages for All Jobs').first().waitFor({ timeout: 30_000 });
  mark(`Stages tab: ${ui.url()}`);
  await ui.close();

  // 6. The same link without the token: a fresh context (no cookie), then a wrong token.
  const denied = [];
  for (const [what, url] of [['no cookie', `${ORIGIN}${href}`],
    ['wrong token', `${ORIGIN}${href}&token=not-the-token`]]) {
    const anon = await browser.newContext();
    try {
      const page = await anon.newPage();
      const resp = await page.goto(url, { timeout: UI_TIMEOUT_MS });
      const body = await page.locator('body').innerText();
      const first = resp.request().redirectedFrom() ?? resp.request();
      const firstStatus = (await first.response())?.status();
      check(!/Details for Job|Spark Jobs/.test(body), `${what}: the Spark UI is served without the token`);
      check(new URL(page.url()).pathname === '/login' && (await page.locator('input[type="password"]').count()) > 0,
        `${what}: ${url} ended at ${page.url()} (${resp.status()}), not Jupyter's login page: ${body.slice(0, 300)}`);
      denied.push({ what, status: firstStatus, landed: page.url() });
    } finally {
      await anon.close();
    }
  }
  mark(`without the token: ${denied.map((d) => `${d.what} ${d.status} -> ${new URL(d.landed).pathname}`).join(', ')}`);

  check(pageErrors.length === 0, `page errors: ${pageErrors.join(' | ')}`);
  console.log('RESULT ' + JSON.stringify({
    ok: true, notebook, href, firstStatus, port: Number(port), job: Number(job), title, timings,
    links: links.length, loads: loaded.length, denied, display,
  }));
});
