/**
 * Pictures of a run for people: training curves from {@code metrics.csv} and the confusion matrix, as PNG files.
 *
 * <p>Charts are drawn with JFreeChart into an in-memory image, never a window, so they work on servers and in CI;
 * {@link dev.finetune.report.Plots} switches AWT to headless mode if nobody chose otherwise. Every file is written
 * atomically, so a report viewer never shows a half-written image.
 */
package dev.finetune.report;
