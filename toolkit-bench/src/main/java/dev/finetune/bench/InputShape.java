package dev.finetune.bench;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;

/**
 * One benchmark input: {@code batch} images of {@code size}×{@code size} pixels, three channels.
 *
 * @param batch images per iteration
 * @param size side of the square input
 */
public record InputShape(int batch, int size) {

    /** Checks the values. */
    public InputShape {
        if (batch < 1) {
            throw new FinetuneException(ErrorKind.USAGE, "batch must be >= 1, found " + batch);
        }
        if (size < 32) {
            throw new FinetuneException(
                    ErrorKind.USAGE, "size must be >= 32 (ResNet downsamples 32x), found " + size);
        }
    }

    /** Parses {@code 32x224}. */
    public static InputShape parse(String text) {
        String[] parts = text.trim().toLowerCase(java.util.Locale.ROOT).split("x");
        try {
            if (parts.length == 2) {
                return new InputShape(Integer.parseInt(parts[0]), Integer.parseInt(parts[1]));
            }
        } catch (NumberFormatException e) {
            // fall through to the message below
        }
        throw new FinetuneException(ErrorKind.USAGE, "input shape must be BATCHxSIZE such as 32x224, found '" + text
                + "'");
    }

    @Override
    public String toString() {
        return batch + "x" + size;
    }
}
