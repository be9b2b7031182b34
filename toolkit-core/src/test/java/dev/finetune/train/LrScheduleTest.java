package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.config.TrainConfig.ScheduleConfig;
import dev.finetune.run.Assembler;
import org.junit.jupiter.api.Test;

/**
 * {@link LrSchedule}: closed forms for constant, step, cosine and warm-up; one-cycle and cosine against values
 * produced by PyTorch's own schedulers (the Python that printed them is beside each table).
 */
class LrScheduleTest {

    /** The schedule a config with these values (null: absent) gives, through the assembler as a run gets it. */
    private static LrSchedule.Spec schedule(String name, Double warmup, Integer stepSize, Double gamma, Double minLr,
            Double maxLrMult, Double pctStart) {
        return Assembler.schedule(new ScheduleConfig(name, warmup, stepSize, gamma, minLr, maxLrMult, pctStart));
    }

    @Test
    void constantIsTheBaseRateEverywhere() {
        LrSchedule s = new LrSchedule(schedule(null, null, null, null, null, null, null), 0.01, 10, 3);
        for (long step : new long[] {0, 1, 9, 10, 29, 30, 1000}) {
            assertEquals(0.01, s.lr(step), 0.0, "step " + step);
        }
    }

    @Test
    void stepDecaysEveryStepSizeEpochs() {
        LrSchedule s = new LrSchedule(schedule("step", null, 2, 0.5, null, null, null), 0.1, 10, 6);
        assertEquals(0.1, s.lr(0), 1e-15);
        assertEquals(0.1, s.lr(19), 1e-15, "epoch 1 (0-based) still at the base rate");
        assertEquals(0.05, s.lr(20), 1e-15);
        assertEquals(0.05, s.lr(39), 1e-15);
        assertEquals(0.025, s.lr(40), 1e-15);
        assertEquals(0.025, s.lr(59), 1e-15);
    }

    @Test
    void stepDefaultsToGammaOneTenth() {
        LrSchedule s = new LrSchedule(schedule("step", null, 1, null, null, null, null), 1.0, 4, 3);
        assertEquals(1.0, s.lr(3), 1e-15);
        assertEquals(0.1, s.lr(4), 1e-15);
        assertEquals(0.01, s.lr(8), 1e-15);
    }

    @Test
    void cosineEndpointsAndMiddle() {
        LrSchedule s = new LrSchedule(schedule("cosine", null, null, null, 0.001, null, null), 0.1, 5, 4);
        assertEquals(0.1, s.lr(0), 1e-15, "starts at the base rate");
        assertEquals(0.0505, s.lr(10), 1e-15, "halfway: the mean of base and floor");
        assertEquals(0.001, s.lr(20), 1e-15, "reaches min_lr at total steps, as CosineAnnealingLR(T_max=total)");
        assertEquals(0.001, s.lr(25), 1e-15, "stays at the floor past the end");
        for (long i = 1; i < 20; i++) {
            assertTrue(s.lr(i) < s.lr(i - 1), "decreasing at " + i);
        }
    }

    @Test
    void cosineDefaultFloorIsZero() {
        LrSchedule s = new LrSchedule(schedule("cosine", null, null, null, null, null, null), 0.1, 5, 2);
        assertEquals(0.0, s.lr(10), 1e-15);
    }

    @Test
    void cosineMatchesPyTorch() {
        // /usr/bin/python3 (torch 1.13):
        //   p = torch.nn.Parameter(torch.zeros(1)); opt = torch.optim.SGD([p], lr=0.1)
        //   s = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=12, eta_min=0.001)
        //   out = []
        //   for _ in range(13): out.append(opt.param_groups[0]["lr"]); opt.step(); s.step()
        //   print(out)
        double[] torch = {0.1, 0.09831332840130888, 0.09336825748732973, 0.0855017856687341, 0.07525000000000001,
            0.06331154273257479, 0.05050000000000001, 0.037688457267425236, 0.025750000000000016,
            0.015498214331265903, 0.007631742512670285, 0.0026866715986911243, 0.001};
        LrSchedule s = new LrSchedule(schedule("cosine", null, null, null, 0.001, null, null), 0.1, 4, 3);
        for (int i = 0; i < torch.length; i++) {
            assertEquals(torch[i], s.lr(i), 1e-12, "step " + i);
        }
    }

    @Test
    void warmupRampsLinearlyToTheBaseRate() {
        LrSchedule s = new LrSchedule(schedule(null, 1.0, null, null, null, null, null), 0.1, 4, 3);
        assertEquals(0.025, s.lr(0), 1e-15);
        assertEquals(0.05, s.lr(1), 1e-15);
        assertEquals(0.075, s.lr(2), 1e-15);
        assertEquals(0.1, s.lr(3), 1e-15, "the last warm-up step reaches the base rate");
        assertEquals(0.1, s.lr(4), 1e-15);
        assertEquals(0.1, s.lr(11), 1e-15);
    }

    @Test
    void fractionalWarmupRoundsToSteps() {
        LrSchedule s = new LrSchedule(schedule(null, 0.5, null, null, null, null, null), 0.2, 8, 2);
        assertEquals(0.05, s.lr(0), 1e-15);
        assertEquals(0.2, s.lr(3), 1e-15);
        assertEquals(0.2, s.lr(4), 1e-15);
    }

    @Test
    void warmupThenCosineStartsTheCurveAfterWarmup() {
        LrSchedule s = new LrSchedule(schedule("cosine", 1.0, null, null, 0.0, null, null), 0.1, 10, 3);
        assertEquals(0.01, s.lr(0), 1e-15);
        assertEquals(0.1, s.lr(9), 1e-15);
        assertEquals(0.1, s.lr(10), 1e-15, "cosine starts at the base rate right after warm-up");
        assertEquals(0.05, s.lr(20), 1e-15, "halfway through the 20 cosine steps");
        assertEquals(0.0, s.lr(30), 1e-15);
    }

    @Test
    void warmupThenStep() {
        LrSchedule s = new LrSchedule(schedule("step", 1.0, 2, 0.1, null, null, null), 1.0, 2, 4);
        assertEquals(0.5, s.lr(0), 1e-15);
        assertEquals(1.0, s.lr(1), 1e-15);
        assertEquals(1.0, s.lr(3), 1e-15);
        assertEquals(0.1, s.lr(4), 1e-15, "decay counts epochs from the start of training, warm-up included");
    }

    @Test
    void oneCycleMatchesPyTorch() {
        // /usr/bin/python3 (torch 1.13):
        //   def onecycle(max_lr, total, pct):
        //       p = torch.nn.Parameter(torch.zeros(1))
        //       opt = torch.optim.SGD([p], lr=max_lr, momentum=0.9)
        //       s = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=total, pct_start=pct)
        //       out = []
        //       for _ in range(total): out.append(opt.param_groups[0]["lr"]); opt.step(); s.step()
        //       return out
        //   print(onecycle(0.1, 20, 0.25))
        double[] torch = {0.0040000000000000036, 0.018058874503045733, 0.052000000000000005, 0.08594112549695429, 0.1,
            0.09890738440717015, 0.09567729017303851, 0.0904508879153485, 0.08345659649182165, 0.0750001,
            0.0654509879153485, 0.05522660225769002, 0.04477379774230999, 0.03454941208465151,
            0.025000300000000013, 0.01654380350817838, 0.009549512084651508, 0.0043231098269614805,
            0.0010930155928298624, 4e-07};
        // base lr 0.05 × max_lr_mult 2 = max_lr 0.1; 5 steps per epoch × 4 epochs = 20 steps.
        LrSchedule s = new LrSchedule(schedule("onecycle", null, null, null, null, 2.0, 0.25), 0.05, 5, 4);
        for (int i = 0; i < torch.length; i++) {
            assertEquals(torch[i], s.lr(i), 1e-12 * torch[i] + 1e-18, "step " + i);
        }
    }

    @Test
    void oneCycleWithFractionalRiseMatchesPyTorch() {
        // Same snippet as above: print(onecycle(0.01, 7, 0.3)) — the rise ends at step 0.3 * 7 - 1 = 1.1.
        double[] torch = {0.0003999999999999993, 0.009805566273349588, 0.009190443762697106, 0.00672683836480545,
            0.003577387757396571, 0.0009929679189326559, 4e-08};
        LrSchedule s = new LrSchedule(schedule("onecycle", null, null, null, null, null, null), 0.01, 7, 1);
        for (int i = 0; i < torch.length; i++) {
            assertEquals(torch[i], s.lr(i), 1e-12 * torch[i] + 1e-18, "step " + i);
        }
    }

    @Test
    void isAPureFunctionOfTheStep() {
        LrSchedule a = new LrSchedule(schedule("onecycle", null, null, null, null, 2.0, 0.25), 0.05, 5, 4);
        LrSchedule b = new LrSchedule(schedule("onecycle", null, null, null, null, 2.0, 0.25), 0.05, 5, 4);
        double late = a.lr(13);
        for (long i = 0; i < 13; i++) {
            a.lr(i);
        }
        assertEquals(late, a.lr(13), 0.0);
        assertEquals(b.lr(13), late, 0.0, "a resumed run computes the same rate without replaying steps");
    }

    @Test
    void zeroStepsPerEpochIsTreatedAsOne() {
        LrSchedule s = new LrSchedule(schedule("cosine", null, null, null, null, null, null), 0.1, 0, 2);
        assertEquals(0.1, s.lr(0), 1e-15);
        assertEquals(0.0, s.lr(2), 1e-15);
    }
}
