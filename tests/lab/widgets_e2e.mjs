// ipywidgets in JupyterLab on the sparkernel kernel, in Debian's headless Chromium driven by
// playwright-core; tests/integration/test_lab.py writes the notebook (widgets.ipynb), starts
// the cluster and JupyterLab, and runs this script. Steps, one cell at a time:
//   0. a slider, a button and an Output widget are displayed: each renders as a widget;
//      the browser moves the slider one step (its handle focused, ArrowRight) and clicks the
//      button, whose on_click prints into the Output widget what the kernel sees ("clicked 4");
//   1. the next cell reads the slider's value in the kernel: "slider is 4";
//   2. a tqdm.notebook bar over three Spark jobs: the bar (a widget) reaches 3/3 while the
//      kernel's own Spark progress displays update in the same cell.
// Exits 1 with the reason on the first failed check; the last stdout line is `RESULT <json>`.
import fs from 'node:fs';
import path from 'node:path';
import { check, env, logger, runInBrowser } from './harness.mjs';

const LAB_URL = env('LAB_URL').replace(/\/?$/, '/');
const TOKEN = env('LAB_TOKEN');
const NOTEBOOK = env('LAB_NOTEBOOK', 'widgets.ipynb');
const SCREENSHOT = path.resolve(env('LAB_SCREENSHOT', 'out/lab/widgets.png'));
const UI_TIMEOUT_MS = 120_000;
const CELL_TIMEOUT_MS = 300_000;
const log = logger('widgets_e2e');

// In the page: one cell's state (count, running, outputs) of the notebook at nbPath.
function cellState(nbPath, index) {
  for (const w of window.jupyterapp.shell.widgets('main')) {
    if (w.context?.path !== nbPath || !w.content?.widgets) continue;
    const kernel = w.sessionContext.session?.kernel ?? null;
    const c = w.content.widgets[index];
    const prompt = c.node.querySelector('.jp-InputPrompt')?.textContent ?? '';
    return {
      kernel: kernel?.name ?? null, status: kernel?.status ?? null,
      count: c.model.executionCount, running: prompt.includes('*'),
      outputs: c.model.outputs.toJSON().map((o) => ({
        type: o.output_type, name: o.name, text: [].concat(o.text ?? []).join(''),
        mimes: o.data ? Object.keys(o.data) : [], ename: o.ename, evalue: o.evalue,
      })),
      text: c.node.querySelector('.jp-Cell-outputArea')?.textContent ?? '',
    };
  }
  return null;
}

function runCell(nbPath, index) {
  for (const w of window.jupyterapp.shell.widgets('main')) {
    if (w.context?.path !== nbPath || !w.content?.widgets) continue;
    w.content.activeCellIndex = index;
    return window.jupyterapp.commands.execute('notebook:run-cell');
  }
  throw new Error('notebook not open');
}

runInBrowser('widgets_e2e', SCREENSHOT, log, async (browser, pageErrors) => {
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.addInitScript({
    content: [cellState, runCell].map(String).join('\n') + '\nwindow.__w = { cellState, runCell };',
  });
  const cell = (i) => page.evaluate(([p, n]) => window.__w.cellState(p, n), [NOTEBOOK, i]);
  const cellNode = (i) => page.locator('.jp-Notebook .jp-Cell').nth(i);
  const run = async (i) => {
    await page.evaluate(([p, n]) => window.__w.runCell(p, n), [NOTEBOOK, i]);
    const deadline = Date.now() + CELL_TIMEOUT_MS;
    for (;;) {
      const st = await cell(i);
      const errors = st.outputs.filter((o) => o.type === 'error');
      check(errors.length === 0, `cell ${i}: ${errors.map((e) => `${e.ename}: ${e.evalue}`).join('; ')}`);
      if (typeof st.count === 'number' && !st.running && st.status === 'idle') return st;
      check(Date.now() < deadline, `cell ${i} not done after ${CELL_TIMEOUT_MS / 1000} s`);
      await page.waitForTimeout(250);
    }
  };

  await page.goto(`${LAB_URL}lab/tree/${NOTEBOOK}?token=${encodeURIComponent(TOKEN)}`, { timeout: UI_TIMEOUT_MS });
  await page.waitForFunction((p) => {
    const st = window.jupyterapp && window.__w.cellState(p, 0);
    return st && st.kernel === 'sparkernel' && st.status === 'idle';
  }, NOTEBOOK, { timeout: UI_TIMEOUT_MS });
  log('notebook open, sparkernel idle');

  // 0. The widgets render; the slider moves one step; the button's on_click prints.
  await run(0);
  const slider = cellNode(0).locator('.widget-slider');
  const button = cellNode(0).locator('button.widget-button', { hasText: 'Go' });
  await slider.waitFor({ timeout: UI_TIMEOUT_MS });
  await button.waitFor({ timeout: UI_TIMEOUT_MS });
  check((await slider.locator('.widget-readout').textContent()).trim() === '3', 'the slider does not show 3');
  await slider.locator('.noUi-handle').focus();
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction(() => document.querySelector('.widget-slider .widget-readout')?.textContent?.trim() === '4',
    null, { timeout: 10_000 });
  await button.click();
  const printed = cellNode(0).locator('.widget-output', { hasText: 'clicked 4' });
  await printed.waitFor({ timeout: 30_000 });
  log('slider moved to 4, the button printed into its Output');

  // 1. The kernel saw the slider move.
  const read = await run(1);
  const said = read.outputs.filter((o) => o.type === 'stream').map((o) => o.text).join('');
  check(said === 'slider is 4\n', `cell 1 printed ${JSON.stringify(said)}`);

  // 2. A tqdm.notebook bar over Spark jobs, beside the kernel's progress displays.
  const jobs = await run(2);
  const mimes = jobs.outputs.flatMap((o) => o.mimes);
  check(mimes.includes('application/vnd.jupyter.widget-view+json'), `no widget in cell 2: ${JSON.stringify(jobs.outputs)}`);
  const bar = cellNode(2).locator('.widget-hprogress, .widget-progress').first();
  await bar.waitFor({ timeout: 30_000 });
  check(/3\/3/.test(jobs.text), `the tqdm bar did not reach 3/3: ${jobs.text.slice(0, 400)}`);
  check(/Spark job \d+/.test(jobs.text), `no Spark progress display in cell 2: ${jobs.text.slice(0, 400)}`);
  check(/total 13499995500000/.test(jobs.text), `cell 2's result missing: ${jobs.text.slice(0, 400)}`);
  log('tqdm bar 3/3 and the Spark progress displays in one cell');

  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT });
  check(pageErrors.length === 0, `page errors: ${pageErrors.join(' | ')}`);
  console.log('RESULT ' + JSON.stringify({ ok: true, slider: 4, clicked: true, mimes }));
});
