package dev.finetune.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@code finetune bench --rounds}: pairs measured next to each other, summarized over rounds. */
class BenchRoundsTest {

    @Test
    void eachWorkloadIsGroupedWithTheOthersThatShareItsPyTorchReference() {
        Map<String, List<Workload>> groups = Benchmark.groups(List.of(Workload.INFERENCE, Workload.INFERENCE_FOLDED,
                Workload.FULL_STEP, Workload.FULL_STEP_SGD_OPS, Workload.FROZEN_STEP, Workload.LAST_STAGE_STEP,
                Workload.FROZEN_STEP_FOLDED));
        assertEquals(List.of("inference", "full-step", "frozen-step", "last-stage-step"),
                List.copyOf(groups.keySet()));
        assertEquals(List.of(Workload.FROZEN_STEP, Workload.FROZEN_STEP_FOLDED), groups.get("frozen-step"));
        assertEquals(Workload.INFERENCE, BenchReport.oursFor(Workload.TORCHSCRIPT_INFERENCE));
        assertEquals(Workload.FULL_STEP, BenchReport.oursFor(Workload.TORCHSCRIPT_FULL_STEP));
    }

    @Test
    void ratiosAreComparedWithinEachRoundThenTheirMedianAndRangeReported() {
        // Round 1: the host is fast for both; round 2 slow for both; round 3 ours meets a slow PyTorch.
        List<List<BenchResult>> rounds = List.of(
                List.of(result("full-step", "ours", List.of(700.0), 600), result("full-step", "pytorch",
                        List.of(720.0), 800), result("ts-full-step", "ours", List.of(680.0), 610)),
                List.of(result("full-step", "ours", List.of(800.0), 610), result("full-step", "pytorch",
                        List.of(780.0), 790), result("ts-full-step", "ours", List.of(760.0), 600)),
                List.of(result("full-step", "ours", List.of(710.0), 620), result("full-step", "pytorch",
                        List.of(900.0), 810), result("ts-full-step", "ours", List.of(700.0), 605)));
        List<BenchReport.Comparison> c = BenchReport.compareRounds(rounds);
        assertEquals(List.of("full-step pytorch:full-step", "full-step torchscript:ts-full-step",
                "ts-full-step pytorch:full-step"), c.stream().map(x -> x.workload() + " " + x.reference()).toList());
        BenchReport.Comparison torch = c.get(0);
        assertEquals(3, torch.rounds());
        assertEquals(720.0 / 700, torch.speedRatio(), 1e-12, "the median of 1.029, 0.975, 1.268");
        assertEquals(780.0 / 800, torch.speedMin(), 1e-12);
        assertEquals(900.0 / 710, torch.speedMax(), 1e-12);
        assertEquals(620.0 / 810, torch.rssRatio(), 1e-12, "the median of 0.75, 0.772, 0.765");
        assertEquals(600.0 / 800, torch.rssMin(), 1e-12);
        assertEquals(610.0 / 790, torch.rssMax(), 1e-12);
        BenchReport.Comparison ts = c.get(1);
        assertEquals(680.0 / 700, ts.speedRatio(), 1e-12, "the median of 0.971, 0.95, 0.986");
        assertEquals(760.0 / 800, ts.speedMin(), 1e-12);
    }

    /**
     * Issue #16's goals as target lines: each of our workloads' peak RSS against PyTorch's, the full step against
     * PyTorch eager and against its TorchScript graph (at 128×64), folded inference against PyTorch (at 32×224), all
     * at the goals' two shapes only; over rounds the median decides and the worst round is named; the graph's own
     * rows and the tcmalloc-against-tcmalloc pairs set no goal.
     */
    @Test
    void theIssueGoalsAreCheckedFromThePairedRatios() {
        List<List<BenchResult>> rounds = List.of(
                List.of(result("full-step", "ours", List.of(700.0), 600), result("full-step", "pytorch",
                        List.of(720.0), 800), result("ts-full-step", "ours", List.of(680.0), 610),
                        result("full-step+our-malloc", "pytorch", List.of(600.0), 500),
                        result("inference-folded", "ours", 32, 224, List.of(500.0), 500),
                        result("inference", "pytorch", 32, 224, List.of(800.0), 600)),
                List.of(result("full-step", "ours", List.of(800.0), 610), result("full-step", "pytorch",
                        List.of(780.0), 790), result("ts-full-step", "ours", List.of(760.0), 600),
                        result("full-step+our-malloc", "pytorch", List.of(600.0), 500),
                        result("inference-folded", "ours", 32, 224, List.of(500.0), 650),
                        result("inference", "pytorch", 32, 224, List.of(700.0), 600)),
                List.of(result("full-step", "ours", List.of(710.0), 620), result("full-step", "pytorch",
                        List.of(900.0), 810), result("ts-full-step", "ours", List.of(700.0), 605),
                        result("full-step+our-malloc", "pytorch", List.of(600.0), 500),
                        result("inference-folded", "ours", 32, 224, List.of(500.0), 500),
                        result("inference", "pytorch", 32, 224, List.of(720.0), 600)));
        List<BenchReport.TargetCheck> t = BenchReport.targets(rounds.get(0), BenchReport.compareRounds(rounds));
        java.util.function.Function<String, BenchReport.TargetCheck> find = prefix -> t.stream()
                .filter(x -> x.target().startsWith(prefix)).findFirst().orElseThrow(() -> new AssertionError(
                        prefix + " not in " + t));
        BenchReport.TargetCheck eager = find.apply("full-step speed >= 1.0x PyTorch eager");
        assertEquals(720.0 / 700, eager.value(), 1e-12);
        assertTrue(eager.met());
        assertTrue(eager.target().contains("(lowest round 0.97)"), eager.target());
        BenchReport.TargetCheck graph = find.apply("full-step speed >= 0.95x its TorchScript graph");
        assertEquals(680.0 / 700, graph.value(), 1e-12);
        assertTrue(graph.met());
        assertEquals("128x64", graph.shape());
        BenchReport.TargetCheck rss = find.apply("full-step peak RSS <= 1.0x PyTorch's");
        assertEquals(620.0 / 810, rss.value(), 1e-12);
        assertTrue(rss.met());
        BenchReport.TargetCheck inf = find.apply("inference-folded speed >= 1.5x PyTorch eager");
        assertEquals(720.0 / 500, inf.value(), 1e-12, "the median of 1.6, 1.4, 1.44");
        assertTrue(!inf.met(), "1.44 is under 1.5");
        assertEquals("32x224", inf.shape());
        BenchReport.TargetCheck infRss = find.apply("inference-folded peak RSS <= 1.0x PyTorch's (highest round 1.08)");
        assertTrue(infRss.met(), "the median round (0.83) decides; the worst is named");
        assertTrue(t.stream().noneMatch(x -> x.target().startsWith("ts-")), "the graph sets no goal: " + t);
        assertEquals(1, t.stream().filter(x -> x.target().startsWith("full-step peak RSS")).count(),
                "one RSS goal per pair with PyTorch as its users run it, none against +our-malloc: " + t);
        List<BenchResult> small = List.of(result("full-step", "ours", 8, 64, List.of(100.0), 600),
                result("full-step", "pytorch", 8, 64, List.of(90.0), 500));
        assertEquals(List.of(), BenchReport.targets(small, BenchReport.compareRounds(List.of(small))),
                "the goals are stated at 32x224 and 128x64 only");
    }

    @Test
    void oneRowPerWorkloadSummarizesItsRounds() {
        Measurement a = measurement(List.of(700.0, 710.0, 690.0), 600_000, 10_000);
        Measurement b = measurement(List.of(800.0, 805.0, 790.0), 620_000, 30_000);
        Measurement c = measurement(List.of(720.0, 650.0, 730.0), 640_000, 20_000);
        BenchResult r = BenchResult.overRounds(List.of(a, b, c), "full step", 100);
        assertEquals(720.0, r.medianMs(), 1e-12, "the median of the rounds' medians 700, 800, 720");
        assertEquals(650.0, r.minMs(), 1e-12);
        assertEquals(805.0, r.maxMs(), 1e-12);
        assertEquals(9, r.iterations());
        assertEquals(128 * 1000.0 / 720, r.imagesPerSecond(), 1e-9);
        assertEquals(620_000 / 1024.0, r.peakRssMb(), 1e-9);
        assertEquals(20_000, r.minorFaultsPerIteration());
        Measurement failed = Measurement.failed("full-step", "ours", new InputShape(128, 64), 2, "boom");
        assertEquals(700.0, BenchResult.overRounds(List.of(failed, a), "full step", 100).medianMs(), 1e-12,
                "a failed round is left out");
        assertEquals("boom", BenchResult.overRounds(List.of(failed), "full step", 100).error());
    }

    @Test
    void theTextNamesTheOrderAndGivesRangesOnlyOverSeveralRounds() {
        List<BenchResult> results = List.of(result("full-step", "ours", List.of(700.0), 600),
                result("full-step", "pytorch", List.of(720.0), 800));
        MachineInfo machine = new MachineInfo("test CPU", 2, 2000, "test", 128, null);
        List<BenchReport.Comparison> one = BenchReport.compareRounds(List.of(results));
        String single = new BenchReport("now", machine, "2.7.1", "1.13", 2, 8, 2, true, 10, 1, results, one,
                List.of(), List.of()).toText();
        assertTrue(single.contains("order:   each of our workloads next to its references"), single);
        assertTrue(!single.contains("speed range"), single);
        String many = new BenchReport("now", machine, "2.7.1", "1.13", 2, 8, 2, true, 10, 3, results,
                BenchReport.compareRounds(List.of(results, results)), List.of(), List.of()).toText();
        assertTrue(many.contains("3 rounds, ours first in odd rounds and last in even ones"), many);
        assertTrue(many.contains("speed range"), many);
        assertTrue(many.contains("1.03-1.03"), many);
    }

    @Test
    void roundsBelowOneAreAUsageError() {
        FinetuneException e = assertThrows(FinetuneException.class, () -> BenchSettings.builder().rounds(0).build());
        assertEquals(ErrorKind.USAGE, e.kind());
        assertTrue(e.getMessage().contains("rounds must be >= 1, found 0"), e.getMessage());
    }

    private static Measurement measurement(List<Double> times, long peakKb, long faults) {
        return new Measurement("full-step", "ours", 128, 64, 2, times, 1_000_000, 200_000, peakKb, 0, 0, faults,
                null, null, null);
    }

    private static BenchResult result(String workload, String side, List<Double> times, double peakMb) {
        return result(workload, side, 128, 64, times, peakMb);
    }

    private static BenchResult result(String workload, String side, int batch, int size, List<Double> times,
            double peakMb) {
        Measurement m = new Measurement(workload, side, batch, size, 2, times, 1, 100_000, (long) (peakMb * 1024), 0,
                0, 0, null, null, null);
        return BenchResult.of(m, workload, 100);
    }
}
