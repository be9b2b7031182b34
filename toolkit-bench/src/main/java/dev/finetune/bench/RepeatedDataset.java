package dev.finetune.bench;

import dev.finetune.data.ImageDataset;
import java.util.AbstractList;
import java.util.List;

/**
 * A small dataset listed {@code copies} times, so that one loader epoch is long enough to time in the steady state
 * (the 500-image quickstart set is only 15 batches of 32). Each copy's samples get their own sample indices, hence
 * their own augmentations.
 */
final class RepeatedDataset implements ImageDataset {
    private final ImageDataset inner;
    private final int copies;
    private final List<Sample> samples;

    RepeatedDataset(ImageDataset inner, int copies) {
        if (copies < 1) {
            throw new IllegalArgumentException("copies must be >= 1, found " + copies);
        }
        this.inner = inner;
        this.copies = copies;
        List<Sample> base = inner.samples();
        this.samples = new AbstractList<>() {
            @Override
            public Sample get(int index) {
                return base.get(index % base.size());
            }

            @Override
            public int size() {
                return base.size() * copies;
            }
        };
    }

    @Override
    public List<String> classNames() {
        return inner.classNames();
    }

    @Override
    public List<Sample> samples() {
        return samples;
    }

    @Override
    public String fingerprint() {
        return inner.fingerprint() + "x" + copies;
    }
}
