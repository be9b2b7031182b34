package dev.finetune.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.testing.TorchReference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * Every op of TrivialAugmentWide and RandAugment, at every one of the 31 magnitude bins and both signs, on a square and
 * an odd-sized image, against torchvision 0.14's {@code _apply_op} on PIL (Debian's): the same bytes, and the same
 * magnitude tables (to float32 rounding). Then the policies themselves: the same seed gives the same images.
 */
class AutoAugmentParityTest {
    private static final Map<String, AutoAugment.Op> OPS = Map.ofEntries(
            Map.entry("Identity", AutoAugment.Op.IDENTITY), Map.entry("ShearX", AutoAugment.Op.SHEAR_X),
            Map.entry("ShearY", AutoAugment.Op.SHEAR_Y), Map.entry("TranslateX", AutoAugment.Op.TRANSLATE_X),
            Map.entry("TranslateY", AutoAugment.Op.TRANSLATE_Y), Map.entry("Rotate", AutoAugment.Op.ROTATE),
            Map.entry("Brightness", AutoAugment.Op.BRIGHTNESS), Map.entry("Color", AutoAugment.Op.COLOR),
            Map.entry("Contrast", AutoAugment.Op.CONTRAST), Map.entry("Sharpness", AutoAugment.Op.SHARPNESS),
            Map.entry("Posterize", AutoAugment.Op.POSTERIZE), Map.entry("Solarize", AutoAugment.Op.SOLARIZE),
            Map.entry("AutoContrast", AutoAugment.Op.AUTO_CONTRAST), Map.entry("Equalize", AutoAugment.Op.EQUALIZE));

    @Test
    void everyOpAtEveryMagnitudeIsTorchvisionsByteForByte() throws Exception {
        Path dir = TorchReference.cached("autoaugment-reference", "DONE", "autoaugment_reference.py");
        JsonNode index = new ObjectMapper().readTree(dir.resolve("index.json").toFile());
        byte[] inputs = Files.readAllBytes(dir.resolve("images.u8"));
        byte[] outputs = Files.readAllBytes(dir.resolve("outputs.u8"));
        RgbImage[] images = new RgbImage[index.get("images").size()];
        int at = 0;
        for (int i = 0; i < images.length; i++) {
            int w = index.get("images").get(i).get(0).asInt();
            int h = index.get("images").get(i).get(1).asInt();
            images[i] = RgbImage.of(w, h, Arrays.copyOfRange(inputs, at, at + 3 * w * h));
            at += 3 * w * h;
        }
        Map<String, int[]> byOp = new TreeMap<>(); // op → {cases, mismatching cases}
        int offset = 0;
        for (JsonNode c : index.get("cases")) {
            String policy = c.get(0).asText();
            String op = c.get(1).asText();
            int bin = c.get(2).asInt();
            int sign = c.get(3).asInt();
            RgbImage img = images[c.get(4).asInt()];
            double m = c.get(5).asDouble();
            if (policy.equals("jitter")) { // ColorJitter's hue: F.adjust_hue
                byte[] want = Arrays.copyOfRange(outputs, offset, offset + 3 * img.width() * img.height());
                offset += want.length;
                int[] counts = byOp.computeIfAbsent("Hue (ColorJitter)", k -> new int[2]);
                counts[0]++;
                if (!Arrays.equals(want, PilOps.hue(img, m).toByteArray())) {
                    counts[1]++;
                    System.out.printf(Locale.ROOT, "autoaugment: hue %s on %dx%d differs%n", m, img.width(),
                            img.height());
                }
                continue;
            }
            AutoAugment aa = policy.equals("ta_wide") ? AutoAugment.trivialWide() : AutoAugment.rand(2, 9);
            AutoAugment.Op o = OPS.get(op);
            if (!index.get("tables").get(policy).get(op).isEmpty()) {
                // torch.linspace's float32 values depend on its vector width (AVX2 or AVX-512 chunks), so the
                // tables agree to the last bit or two; the ops below take torchvision's exact magnitude.
                // (RandAugment's translation range scales with the image, so each case carries its own value.)
                assertEquals(m, sign * aa.magnitude(o, bin, img.width(), img.height()), 1e-6 * Math.max(1, Math.abs(m)),
                        policy + " " + op + " bin " + bin + " on " + img.width() + "x" + img.height());
            }
            byte[] want = Arrays.copyOfRange(outputs, offset, offset + 3 * img.width() * img.height());
            offset += want.length;
            byte[] got = AutoAugment.apply(o, img, m).toByteArray();
            int[] counts = byOp.computeIfAbsent(op, k -> new int[2]);
            counts[0]++;
            if (!Arrays.equals(want, got)) {
                counts[1]++;
                int diff = 0;
                for (int i = 0; i < want.length; i++) {
                    diff += want[i] != got[i] ? 1 : 0;
                }
                System.out.printf(Locale.ROOT, "autoaugment: %s %s m=%s on %dx%d: %d of %d bytes differ%n", policy,
                        op, m, img.width(), img.height(), diff, want.length);
            }
        }
        assertEquals(outputs.length, offset, "every reference output compared");
        byOp.forEach((op, n) -> System.out.printf(Locale.ROOT, "autoaugment: %-12s %4d cases, %d differ%n", op, n[0],
                n[1]));
        assertTrue(byOp.values().stream().allMatch(n -> n[1] == 0), "ops differ from torchvision: see above");
        assertEquals(15, byOp.size(), "all 14 ops and ColorJitter's hue covered");
    }

    @Test
    void policiesRepeatForTheSameSeedAndVary() {
        RgbImage img = RgbImage.of(16, 12, randomBytes(16 * 12 * 3));
        for (AutoAugment aa : new AutoAugment[] {AutoAugment.trivialWide(), AutoAugment.rand(2, 9)}) {
            int distinct = 0;
            RgbImage first = null;
            for (int s = 0; s < 20; s++) {
                RgbImage a = aa.apply(img, new SplittableRandom(s));
                RgbImage b = aa.apply(img, new SplittableRandom(s));
                assertEquals(a, b, "same seed, same image");
                if (first == null) {
                    first = a;
                } else if (!a.equals(first)) {
                    distinct++;
                }
            }
            assertTrue(distinct >= 10, aa.policy() + ": 20 seeds should give varied images, got " + distinct);
        }
    }

    /**
     * The training pipeline with TrivialAugment and RandomErasing(p=1): each (seed, epoch, sample) gives one tensor,
     * repeatably; epochs differ; every erased box is a zero rectangle of torchvision's area and aspect ranges.
     */
    @Test
    void trainingTensorsWithAugmentAndErasingRepeatPerSampleAndEpoch() {
        TransformSpec base = TransformSpec.defaults().withImageSize(32);
        TransformSpec spec = new TransformSpec(32, 37, true, true, base.mean(), base.std(), Interpolation.BILINEAR,
                AutoAugment.trivialWide(), 1.0);
        RgbImage img = RgbImage.of(40, 36, randomBytes(40 * 36 * 3));
        int erased = 0;
        for (int sample = 0; sample < 20; sample++) {
            float[] a = spec.trainTensor(img, 3, 1, sample);
            assertTrue(Arrays.equals(a, spec.trainTensor(img, 3, 1, sample)), "same seed, epoch and sample");
            assertTrue(!Arrays.equals(a, spec.trainTensor(img, 3, 2, sample)), "another epoch draws anew");
            // The erased box: rows and columns whose three channels are all exactly 0 form one rectangle.
            int top = -1;
            int bottom = -1;
            int left = 32;
            int right = -1;
            for (int y = 0; y < 32; y++) {
                for (int x = 0; x < 32; x++) {
                    boolean zero = a[y * 32 + x] == 0f && a[1024 + y * 32 + x] == 0f && a[2048 + y * 32 + x] == 0f;
                    if (zero) {
                        top = top < 0 ? y : top;
                        bottom = y;
                        left = Math.min(left, x);
                        right = Math.max(right, x);
                    }
                }
            }
            if (top >= 0) {
                erased++;
                int h = bottom - top + 1;
                int w = right - left + 1;
                double share = (double) h * w / (32 * 32);
                assertTrue(share > 0.01 && share < 0.4 && h < 32 && w < 32, "box " + h + "x" + w);
            }
        }
        assertTrue(erased >= 15, "p=1 erases nearly every sample (a box needs to fit in ten tries): " + erased);
    }

    /** ColorJitter: the same draw repeats; brightness alone at a drawn factor is Pillow's blend with black. */
    @Test
    void colorJitterRepeatsAndIsMadeOfTheCheckedOps() {
        RgbImage img = RgbImage.of(16, 12, randomBytes(16 * 12 * 3));
        ColorJitter all = new ColorJitter(0.4, 0.4, 0.4, 0.1);
        assertEquals(all.apply(img, new SplittableRandom(9)), all.apply(img, new SplittableRandom(9)));
        assertTrue(!all.apply(img, new SplittableRandom(9)).equals(img), "jitter changes the image");
        ColorJitter brightness = new ColorJitter(0.5, 0, 0, 0);
        SplittableRandom r = new SplittableRandom(4);
        RgbImage got = brightness.apply(img, r);
        SplittableRandom replay = new SplittableRandom(4);
        for (int i = 3; i > 0; i--) {
            replay.nextInt(i + 1); // the order's draws
        }
        double factor = 0.5 + replay.nextDouble();
        assertEquals(PilOps.brightness(img, factor), got);
    }

    private static byte[] randomBytes(int n) {
        byte[] b = new byte[n];
        new SplittableRandom(5).nextBytes(b);
        return b;
    }
}
