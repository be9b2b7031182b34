package dev.finetune.data;

import dev.finetune.ConfigException;
import java.util.Locale;

/** The resampling filter of every resize, as torchvision's {@code InterpolationMode} names it on a PIL image. */
public enum Interpolation {
    /** Pillow's bilinear (triangle filter with antialiasing): torchvision's default. */
    BILINEAR,
    /** Pillow's bicubic (Keys' cubic, a = -0.5, with antialiasing). */
    BICUBIC;

    /** The lower-case name used in configs and torchvision ({@code bilinear}). */
    public String configName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Parses {@code bilinear} or {@code bicubic}; null is bilinear. */
    public static Interpolation parse(String name, String where) {
        if (name == null) {
            return BILINEAR;
        }
        for (Interpolation i : values()) {
            if (i.configName().equalsIgnoreCase(name)) {
                return i;
            }
        }
        throw new ConfigException(where, "must be bilinear or bicubic, found '" + name + "'");
    }
}
