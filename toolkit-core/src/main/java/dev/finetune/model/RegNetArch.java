package dev.finetune.model;


/**
 * torchvision's RegNetY-400MF and -800MF. The per-stage depths and widths are what torchvision's
 * {@code BlockParams.from_init_params} computes from the published (depth, w_0, w_a, w_m, group width) — 400MF:
 * (16, 48, 27.89, 2.09, 8), 800MF: (14, 56, 38.84, 2.4, 16), SE ratio 0.25 — read off Debian's torchvision 0.14 and
 * checked by the parity test (every tensor name and shape).
 */
public enum RegNetArch implements Architecture {
    REGNET_Y_400MF(new int[] {1, 3, 6, 6}, new int[] {48, 104, 208, 440}, 8),
    REGNET_Y_800MF(new int[] {1, 3, 8, 2}, new int[] {64, 144, 320, 784}, 16);

    private final int[] depths;
    private final int[] widths;
    private final int groupWidth;

    RegNetArch(int[] depths, int[] widths, int groupWidth) {
        this.depths = depths;
        this.widths = widths;
        this.groupWidth = groupWidth;
    }


    @Override
    public String headName() {
        return "fc";
    }

    @Override
    public RegNet create(int classes) {
        return new RegNet(this, classes, depths, widths, groupWidth, 0.25);
    }
}
