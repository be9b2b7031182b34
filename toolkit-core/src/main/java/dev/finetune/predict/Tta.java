package dev.finetune.predict;

import dev.finetune.data.PilTransforms;
import dev.finetune.data.RgbImage;
import dev.finetune.data.TransformSpec;
import java.util.List;
import java.util.Locale;

/**
 * Test-time augmentation: the views of one image whose softmax probabilities are averaged. {@code flip} is the
 * evaluation image and its mirror ({@code F.hflip}); {@code five-crop} is torchvision's {@code FiveCrop(crop)} of
 * {@code Resize(resize)}: top-left, top-right, bottom-left, bottom-right and centre.
 */
public enum Tta {
    NONE, FLIP, FIVE_CROP;

    /** {@code none}, {@code flip} or {@code five-crop}. */
    public String cliName() {
        return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    /** Parses {@link #cliName()}; null for an unknown name. */
    public static Tta parse(String name) {
        for (Tta t : values()) {
            if (t.cliName().equals(name)) {
                return t;
            }
        }
        return null;
    }

    /** How many views {@link #views} makes of each image. */
    public int viewCount() {
        return switch (this) {
            case NONE -> 1;
            case FLIP -> 2;
            case FIVE_CROP -> 5;
        };
    }

    /** The views of {@code image} under {@code spec}'s evaluation preprocessing, each {@code imageSize} square. */
    public List<RgbImage> views(RgbImage image, TransformSpec spec) {
        return switch (this) {
            case NONE -> List.of(spec.evalImage(image));
            case FLIP -> {
                RgbImage eval = spec.evalImage(image);
                yield List.of(eval, PilTransforms.hflip(eval));
            }
            case FIVE_CROP -> {
                RgbImage resized = PilTransforms.resize(image, spec.resizeSize(), spec.interpolation());
                int c = spec.imageSize();
                int h = resized.height();
                int w = resized.width();
                yield List.of(PilTransforms.crop(resized, 0, 0, c, c), PilTransforms.crop(resized, 0, w - c, c, c),
                        PilTransforms.crop(resized, h - c, 0, c, c), PilTransforms.crop(resized, h - c, w - c, c, c),
                        PilTransforms.centerCrop(resized, c));
            }
        };
    }
}
