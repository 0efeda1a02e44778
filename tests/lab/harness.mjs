// What the JupyterLab scripts (lab_e2e.mjs, widgets_e2e.mjs) share: their settings from the
// environment, checks that fail with a reason, and one headless Chromium session (Debian's,
// driven by playwright-core) that leaves a screenshot of the page when it fails.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

export const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};

export class CheckFailed extends Error {}
export const check = (ok, msg) => { if (!ok) throw new CheckFailed(msg); };

export function logger(name) {
  const t0 = Date.now();
  return (msg) => console.log(`[${name} ${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
}

// Runs body(browser, pageErrors) and exits: 0 when it returns, 1 with the reason when it
// throws, after a screenshot of the first page as <screenshot>-failed.png. The browser is
// always closed.
export function runInBrowser(name, screenshot, log, body) {
  const main = async () => {
    const browser = await chromium.launch({
      executablePath: env('CHROMIUM', '/usr/bin/chromium'), headless: true, args: ['--no-sandbox'],
    });
    const pageErrors = [];
    try {
      await body(browser, pageErrors);
    } catch (e) {
      try {
        const pages = browser.contexts().flatMap((c) => c.pages());
        if (pages.length) {
          const failed = screenshot.replace(/\.png$/, '') + '-failed.png';
          fs.mkdirSync(path.dirname(failed), { recursive: true });
          await pages[0].screenshot({ path: failed });
          log(`failure screenshot ${failed}`);
        }
      } catch { /* the browser may be gone */ }
      if (pageErrors.length) log(`page errors: ${pageErrors.join(' | ')}`);
      throw e;
    } finally {
      await browser.close();
    }
  };
  main().catch((e) => {
    console.error(`${name}: ${e instanceof CheckFailed ? 'check failed: ' : ''}${e.stack ?? e}`);
    process.exit(1);
  });
}
