package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Image;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.Dimension;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.logging.LogEntry;
import org.openqa.selenium.logging.LogType;

/**
 * {@code report.html} as a person sees it: a real training run writes it, {@code finetune report} rebuilds it, and
 * Debian's chromium (headless, through its chromedriver; no network) renders it. Asserts on the rendered page: every
 * section, every image decoded, one per-class row per class, numbers that agree with the run's own metrics, no
 * script and no request beyond the file, no console error; a screenshot goes to {@code target/report/}.
 */
class ReportBrowserTest {
    @TempDir
    static Path tmp;

    static Path run;

    @BeforeAll
    static void train() throws Exception {
        Path cfg = Cli.config(tmp, "report", "{default: freeze, rules: [{train: [layer4.*, fc.*]}]}",
                "{epochs: 3, batch_size: 32, seed: 2, report: true}");
        run = tmp.resolve("run");
        Cli.Result r = Cli.run("train", "-c", cfg.toString(), "--run-dir", run.toString(), "--quiet");
        assertEquals(0, r.code(), r.err() + r.out());
        assertTrue(r.out().contains("report: " + run.resolve("report.html")), r.out());
    }

    @Test
    void reportRendersInChromiumWithEverySection() throws Exception {
        Path page = run.resolve("report.html");
        String written = Files.readString(page);
        Files.delete(page);
        Cli.Result rebuilt = Cli.run("report", run.toString());
        assertEquals(0, rebuilt.code(), rebuilt.err());
        assertEquals(written, Files.readString(page), "finetune report rebuilds the page training wrote");
        assertTrue(!written.contains("<script") && !written.contains("http://") || written.contains(
                "xmlns=\"http://www.w3.org/2000/svg\""), "no script");
        assertTrue(!written.contains("<script") && !written.contains("https://"), "no script and no remote resource");

        ChromeDriverService service = new ChromeDriverService.Builder()
                .usingDriverExecutable(new java.io.File("/usr/bin/chromedriver")).usingAnyFreePort().build();
        ChromeOptions options = new ChromeOptions();
        options.setBinary("/usr/bin/chromium");
        options.addArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--window-size=1200,900");
        options.setCapability("goog:loggingPrefs", Map.of("browser", "ALL"));
        ChromeDriver driver = new ChromeDriver(service, options);
        try {
            driver.get(page.toUri().toString());
            for (String id : List.of("curves", "confusion", "per-class", "mistakes", "calibration", "freeze-map",
                    "config", "versions")) {
                WebElement s = driver.findElement(By.id(id));
                assertTrue(s.isDisplayed() && s.getSize().getHeight() > 40, id + " is rendered");
            }
            assertEquals("Confusion matrix — best checkpoint (epoch " + bestEpoch() + ")",
                    driver.findElement(By.cssSelector("#confusion h2")).getText());
            List<WebElement> rows = driver.findElements(By.cssSelector("#per-class-table tbody tr"));
            assertEquals(5, rows.size(), "one row per class");
            assertEquals("ankle_boot", rows.get(0).findElement(By.tagName("td")).getText());
            JavascriptExecutor js = driver;
            assertEquals(Boolean.TRUE, js.executeScript("return document.images.length > 0 && Array.from("
                    + "document.images).every(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0)"),
                    "every gallery image decodes");
            assertEquals(0L, js.executeScript("return document.scripts.length"));
            assertEquals(0L, js.executeScript("return performance.getEntriesByType('resource').length"),
                    "the page loads nothing besides itself");
            long charts = (Long) js.executeScript("return Array.from(document.querySelectorAll('svg.chart'))"
                    + ".filter(s => s.getBoundingClientRect().width > 100).length");
            assertEquals(5, charts, "two curves, confusion, reliability, freeze map");
            long tensors = (Long) js.executeScript("return document.querySelectorAll('#freeze-map svg rect[data-state]')"
                    + ".length");
            assertEquals(102, tensors, "every ResNet-18 tensor (parameters and BN statistics) on the freeze map");
            assertTrue(driver.findElement(By.cssSelector("#freeze-map")).getText().contains(
                    "backward frontier: autograd starts at layer4"), "the frontier is drawn at layer4");
            // The per-class table is the best checkpoint's: its accuracy is the run's best val_top1.
            String acc = driver.findElement(By.cssSelector("#per-class-table tfoot tr:last-child td:nth-child(4)"))
                    .getText();
            assertEquals(String.format(java.util.Locale.ROOT, "%.3f", bestTop1()), acc);
            List<LogEntry> errors = driver.manage().logs().get(LogType.BROWSER).getAll().stream()
                    .filter(e -> e.getLevel().intValue() >= Level.SEVERE.intValue()).toList();
            assertTrue(errors.isEmpty(), "console errors: " + errors);

            long height = (Long) js.executeScript("return document.documentElement.scrollHeight");
            driver.manage().window().setSize(new Dimension(1200, (int) Math.min(height, 8000)));
            byte[] png = driver.getScreenshotAs(OutputType.BYTES);
            Path out = Path.of("target", "report").toAbsolutePath();
            Files.createDirectories(out);
            Files.write(out.resolve("report-screenshot.png"), png);
            BufferedImage full = ImageIO.read(new ByteArrayInputStream(png));
            assertTrue(full.getWidth() >= 1000 && full.getHeight() > 2000, full.getWidth() + "x" + full.getHeight());
            // A small copy, as the README shows it (docs/report-screenshot.png is this file).
            int w = 560;
            int h = full.getHeight() * w / full.getWidth();
            BufferedImage small = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
            small.getGraphics().drawImage(full.getScaledInstance(w, h, Image.SCALE_AREA_AVERAGING), 0, 0, null);
            ImageIO.write(small, "png", out.resolve("report-screenshot-small.png").toFile());
        } finally {
            driver.quit();
        }
    }

    private static int bestEpoch() throws Exception {
        return new com.fasterxml.jackson.databind.ObjectMapper().readTree(run.resolve("summary.json").toFile())
                .get("best_epoch").asInt();
    }

    private static double bestTop1() throws Exception {
        return new com.fasterxml.jackson.databind.ObjectMapper().readTree(run.resolve("summary.json").toFile())
                .get("best_value").asDouble();
    }
}
