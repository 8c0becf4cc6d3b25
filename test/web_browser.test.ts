import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { repo_root } from "../lib/paths.js";
import { write_edited_release } from "./support/psd_zip.js";
import { make_sandbox, run_cli, type Sandbox } from "./support/sandbox.js";
import { start_web, type WebProcess } from "./support/web_process.js";

// A real browser (Debian's Chromium, installed by infra/setup.sh --test) on the real dashboard:
// the charts draw, nothing complains in the console, the settings switch units, a phone fits.
// Screenshots land in test-artifacts/ for a person to look at.

const chromium_path = "/usr/bin/chromium";
const artifacts_dir = path.join(repo_root, "test-artifacts");
const launch_timeout_ms = 60_000;
const page_timeout_ms = 30_000;
const phone = { width: 390, height: 844 };

/** Pixels a canvas has painted (non-transparent): zero when a chart failed to draw. */
function painted_pixels(page: Page, selector: string): Promise<number> {
  return page.$eval(selector, (canvas) => {
    const element = canvas as HTMLCanvasElement;
    const { data } = element.getContext("2d")!.getImageData(0, 0, element.width, element.height);
    let painted = 0;
    for (let alpha = 3; alpha < data.length; alpha += 4) if (data[alpha] !== 0) painted++;
    return painted;
  });
}

async function assert_charts_drawn(page: Page): Promise<void> {
  const ids = await page.$$eval("canvas[data-chart]", (canvases) => canvases.map((canvas) => canvas.id));
  assert.ok(ids.length >= 2, `charts on ${page.url()}`);
  for (const id of ids) assert.ok(await painted_pixels(page, `#${id}`) > 1000, `chart ${id} on ${page.url()} is drawn`);
}

describe("the dashboard in Chromium", () => {
  let sandbox: Sandbox;
  let web: WebProcess;
  let browser: BrowserContext;
  let profile_dir: string;
  const complaints: string[] = [];

  before(async () => {
    sandbox = make_sandbox();
    const built = await run_cli(["pipeline", "run", "all"], sandbox.env);
    assert.equal(built.code, 0, built.stderr + built.stdout);
    web = await start_web(sandbox.env, "standalone");
    fs.mkdirSync(artifacts_dir, { recursive: true });
    profile_dir = fs.mkdtempSync(path.join(os.tmpdir(), "materia-chromium-"));
    browser = await chromium.launchPersistentContext(profile_dir, {
      executablePath: chromium_path,
      headless: true,
      timeout: launch_timeout_ms,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      viewport: { width: 1280, height: 900 },
    });
    browser.setDefaultTimeout(page_timeout_ms);
    browser.on("page", (page) => {
      page.on("console", (message) => {
        if (message.type() === "error" || message.type() === "warning") complaints.push(`${page.url()}: ${message.text()}`);
      });
      page.on("pageerror", (error) => complaints.push(`${page.url()}: ${error.message}`));
    });
  });
  after(async () => {
    try {
      await browser?.close();
      await web?.stop();
    } finally {
      fs.rmSync(profile_dir, { recursive: true, force: true });
      sandbox.cleanup();
    }
  });

  test("the overview and Brazil's page draw their charts, with no console error", async () => {
    const page = await browser.newPage();
    await page.goto(`${web.url}/`);
    await assert_charts_drawn(page);
    await page.screenshot({ path: path.join(artifacts_dir, "overview.png"), fullPage: true });
    await page.goto(`${web.url}/country/BR`);
    assert.equal(await page.textContent("h1 >> nth=0").then((text) => text?.replace(/\s+/g, " ").trim()), "Brazil BR");
    await assert_charts_drawn(page);
    await page.screenshot({ path: path.join(artifacts_dir, "country_BR.png"), fullPage: true });
    await page.close();
    assert.deepEqual(complaints, []);
  });

  test("switching units in settings changes the figures on the pages", async () => {
    const page = await browser.newPage();
    await page.goto(`${web.url}/country/BR`);
    const production = page.locator('.card-value[data-measure="production"]');
    assert.equal(await production.textContent(), "66,300");
    const last_row_production = page.locator('table[data-table="balance"] tbody tr:last-child td[data-key="production"]');
    assert.equal(await last_row_production.textContent(), "66,300");

    await page.goto(`${web.url}/settings`);
    await page.check('input[name="units"][value="tonnes"]');
    await page.selectOption('select[name="from"]', "2000");
    await Promise.all([page.waitForURL(/\/settings\?saved=1$/), page.click('button:text("Save")')]);
    assert.equal(await page.isChecked('input[name="units"][value="tonnes"]'), true, "the form shows the saved choice");
    await page.screenshot({ path: path.join(artifacts_dir, "settings.png") });

    await page.goto(`${web.url}/country/BR`);
    assert.equal(await production.textContent(), "3,978,000");
    assert.equal(await last_row_production.textContent(), "3,978,000");
    assert.equal(await page.locator('table[data-table="balance"] tbody tr:first-child td[data-key="market_year"]').textContent(), "2000/01",
      "the default year range applies too");
    assert.match(await page.textContent(".lede") ?? "", /metric tonnes/);
    await assert_charts_drawn(page);
    await page.screenshot({ path: path.join(artifacts_dir, "country_BR_tonnes.png"), fullPage: true });

    await page.goto(`${web.url}/settings`);
    await Promise.all([page.waitForURL(/\/settings\?saved=1$/), page.click('button:text("Reset to defaults")')]);
    await page.goto(`${web.url}/country/BR`);
    assert.equal(await production.textContent(), "66,300");
    await page.close();
    assert.deepEqual(complaints, []);
  });

  test("the pages fit a phone's width and still draw their charts", async () => {
    const page = await browser.newPage();
    await page.setViewportSize(phone);
    for (const [name, address] of [["overview", "/"], ["country_BR", "/country/BR"], ["rankings", "/rankings"]] as const) {
      await page.goto(web.url + address);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= phone.width, `${address} is ${width} px wide on a ${phone.width} px screen`);
      if (address !== "/rankings") await assert_charts_drawn(page);
      await page.screenshot({ path: path.join(artifacts_dir, `phone_${name}.png`), fullPage: true });
    }
    await page.close();
    assert.deepEqual(complaints, []);
  });

  test("the What changed page, the series-break markers and the 2023/24 labels render, with no console error", async () => {
    const revised = path.join(sandbox.dir, "revised.zip");
    await write_edited_release(revised, { revisions: [
      { country_code: "CO", market_year: 2023, attribute: "Production", value: 12_000 },
      { country_code: "ET", market_year: 2022, attribute: "Exports", value: 4_000 },
    ] });
    const built = await run_cli(["pipeline", "run", "all"], { ...sandbox.env, PSD_SOURCE_URL: `file://${revised}` });
    assert.equal(built.code, 0, built.stderr);

    const page = await browser.newPage();
    await page.goto(`${web.url}/`);
    assert.match(await page.textContent(".card-label >> nth=0") ?? "", /^Production 2023\/24$/);
    assert.match(await page.textContent('.card-revision[data-revision="revised"] >> nth=0') ?? "", /^revised \+500 /);
    await assert_charts_drawn(page);
    // 2002/03 (importers enter the data) and 2016/17 (the United Kingdom does), drawn on every world chart.
    for (const id of ["world-production", "world-supply-use", "world-stocks-to-use"]) {
      assert.equal(await page.getAttribute(`#${id}`, "data-breaks-drawn"), "2", id);
    }
    await page.click("text=What changed in this release");
    await page.waitForURL(/\/changes$/);
    const revised_rows = page.locator('table[data-table="revised"] tbody tr');
    assert.equal(await revised_rows.count(), 2);
    assert.equal(await revised_rows.nth(0).locator("td >> nth=0").textContent(), "Colombia", "the largest revision first");
    assert.equal(await revised_rows.nth(0).locator('td[data-key="market_year"]').textContent(), "2023/24");
    assert.equal(await revised_rows.nth(0).locator('td[data-key="change"]').textContent(), "+500");
    await page.screenshot({ path: path.join(artifacts_dir, "changes.png"), fullPage: true });

    await page.goto(`${web.url}/country/UK`);
    assert.equal(await page.getAttribute("#country-supply-use", "data-breaks-drawn"), "1", "the UK enters in 2016/17");
    assert.equal(await page.locator('td[data-mark="break"]').textContent().then((text) => text?.trim()), "2016/17 break");
    await page.screenshot({ path: path.join(artifacts_dir, "country_UK.png"), fullPage: true });

    await page.setViewportSize(phone);
    await page.goto(`${web.url}/changes`);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= phone.width, `/changes is ${width} px wide on a ${phone.width} px screen`);
    await page.screenshot({ path: path.join(artifacts_dir, "phone_changes.png"), fullPage: true });
    await page.close();
    assert.deepEqual(complaints, []);
  });
});
