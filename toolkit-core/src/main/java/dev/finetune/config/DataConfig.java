package dev.finetune.config;

import dev.finetune.ConfigException;
import dev.finetune.data.Interpolation;
import java.util.List;

/**
 * {@code data:} — where the images are and how they are prepared.
 *
 * <pre>
 * data:
 *   format: imagefolder        # imagefolder (default) | idx
 *   root: data/fashion-mnist-b # imagefolder: root/train/&lt;class&gt;/*.png and root/val/&lt;class&gt;/…
 *   val_split: 0.1             # when root has no val/ folder
 *   image_size: 224
 *   augment: true              # random resized crop + horizontal flip for training
 * </pre>
 *
 * @param format imagefolder or idx
 * @param root imagefolder root (relative paths resolve against the config file's folder)
 * @param valSplit fraction of train held out when there is no val/ folder
 * @param idx IDX source (Fashion-MNIST / MNIST files)
 * @param imageSize side of the square input (default 224)
 * @param resize eval: shorter side resized to this before the center crop (default imageSize × 256/224)
 * @param augment random resized crop + flip in training (default true)
 * @param interpolation the filter of every resize: bilinear (default, torchvision's) or bicubic
 * @param sampler {@code shuffle} (default: every sample once per epoch) or {@code balanced} (class-balanced draws with
 *     replacement)
 * @param mean normalization mean (default ImageNet's)
 * @param std normalization std (default ImageNet's)
 * @param onBadImage fail (default) or skip
 * @param workers decoding threads (default: cores)
 * @param autoAugment {@code ta_wide} (TrivialAugmentWide) or {@code ra} (RandAugment), torchvision's, after the crop
 *     and flip; absent for none
 * @param raNumOps RandAugment's ops per image (default 2)
 * @param raMagnitude RandAugment's magnitude bin, 0-30 (default 9)
 * @param randomErase torchvision's RandomErasing probability on the normalized tensor (default 0: off)
 * @param colorJitter torchvision's ColorJitter after the crop and flip; absent for none
 * @param cropScale the random resized crop's area range {@code [min, max]} (torchvision's and timm's {@code scale};
 *     default {@code [0.08, 1]})
 */
public record DataConfig(
        String format,
        String root,
        Double valSplit,
        IdxConfig idx,
        Integer imageSize,
        Integer resize,
        Boolean augment,
        String interpolation,
        String sampler,
        List<Double> mean,
        List<Double> std,
        String onBadImage,
        Integer workers,
        String autoAugment,
        Integer raNumOps,
        Integer raMagnitude,
        Double randomErase,
        ColorJitterConfig colorJitter,
        List<Double> cropScale) {

    public DataConfig {
        format = format == null ? "imagefolder" : format;
        if (!format.equals("imagefolder") && !format.equals("idx")) {
            throw new ConfigException("data.format", "must be 'imagefolder' or 'idx', found '" + format + "'");
        }
        if (format.equals("imagefolder") && root == null) {
            throw new ConfigException("data.root", "required for imagefolder data: a folder with train/ and val/"
                    + " (or class folders and data.val_split)");
        }
        if (format.equals("idx") && idx == null) {
            throw new ConfigException("data.idx", "required for idx data: {dir: /usr/share/datasets/fashion-mnist}");
        }
        if (valSplit != null && !(valSplit > 0 && valSplit < 1)) {
            throw new ConfigException("data.val_split", "must be in (0, 1), found " + valSplit);
        }
        imageSize = imageSize == null ? 224 : imageSize;
        if (imageSize < 16) {
            throw new ConfigException("data.image_size", "must be >= 16, found " + imageSize);
        }
        resize = resize == null ? (int) Math.round(imageSize * 256.0 / 224.0) : resize;
        if (resize < imageSize) {
            throw new ConfigException("data.resize", "must be >= data.image_size (" + imageSize + "), found " + resize);
        }
        augment = augment == null ? Boolean.TRUE : augment;
        interpolation = Interpolation.parse(interpolation, "data.interpolation").configName();
        sampler = sampler == null ? "shuffle" : sampler;
        if (!sampler.equals("shuffle") && !sampler.equals("balanced")) {
            throw new ConfigException("data.sampler", "must be shuffle or balanced, found '" + sampler + "'");
        }
        mean = mean == null ? List.of(0.485, 0.456, 0.406) : List.copyOf(mean);
        std = std == null ? List.of(0.229, 0.224, 0.225) : List.copyOf(std);
        if (mean.size() != 3) {
            throw new ConfigException("data.mean", "must be 3 numbers (R, G, B), found " + mean);
        }
        if (std.size() != 3 || std.stream().anyMatch(s -> !(s > 0))) {
            throw new ConfigException("data.std", "must be 3 positive numbers (R, G, B), found " + std);
        }
        onBadImage = onBadImage == null ? "fail" : onBadImage;
        if (!onBadImage.equals("fail") && !onBadImage.equals("skip")) {
            throw new ConfigException("data.on_bad_image", "must be 'fail' or 'skip', found '" + onBadImage + "'");
        }
        workers = workers == null ? 0 : workers;
        if (workers < 0) {
            throw new ConfigException("data.workers", "must be >= 0 (0: one per core), found " + workers);
        }
        if (autoAugment != null && !autoAugment.equals("ta_wide") && !autoAugment.equals("ra")) {
            throw new ConfigException("data.auto_augment", "must be ta_wide (TrivialAugmentWide) or ra (RandAugment),"
                    + " found '" + autoAugment + "'");
        }
        if ((raNumOps != null || raMagnitude != null) && !"ra".equals(autoAugment)) {
            throw new ConfigException(raNumOps != null ? "data.ra_num_ops" : "data.ra_magnitude", "applies to"
                    + " data.auto_augment: ra only" + (autoAugment == null ? " (auto_augment is not set)"
                            : " (auto_augment is " + autoAugment + ")"));
        }
        raNumOps = raNumOps == null ? 2 : raNumOps;
        if (raNumOps < 1 || raNumOps > 16) {
            throw new ConfigException("data.ra_num_ops", "must be 1 to 16, found " + raNumOps);
        }
        raMagnitude = raMagnitude == null ? 9 : raMagnitude;
        if (raMagnitude < 0 || raMagnitude > 30) {
            throw new ConfigException("data.ra_magnitude", "must be 0 to 30 (the 31 magnitude bins), found "
                    + raMagnitude);
        }
        if (colorJitter != null && autoAugment != null) {
            throw new ConfigException("data.color_jitter", "cannot be combined with data.auto_augment (its ops already"
                    + " jitter brightness, colour and contrast; timm applies color jitter only without auto-augment);"
                    + " keep one of the two");
        }
        if (cropScale != null) {
            if (cropScale.size() != 2 || cropScale.contains(null)
                    || !(cropScale.get(0) > 0 && cropScale.get(0) <= cropScale.get(1) && cropScale.get(1) <= 1)) {
                throw new ConfigException("data.crop_scale", "must be [min, max] with 0 < min <= max <= 1 (the"
                        + " crop's area as a fraction of the image's, torchvision's default [0.08, 1]), found "
                        + cropScale);
            }
            if (!augment) {
                throw new ConfigException("data.crop_scale", "applies to the random resized crop of data.augment:"
                        + " true, and data.augment is false; remove crop_scale or set augment: true");
            }
            cropScale = List.copyOf(cropScale);
        }
        randomErase = randomErase == null ? 0.0 : randomErase;
        if (!(randomErase >= 0 && randomErase <= 1)) {
            throw new ConfigException("data.random_erase", "must be a probability in [0, 1], found " + randomErase);
        }
    }

    /**
     * {@code color_jitter: {brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0}} (each 0 = off).
     *
     * @param brightness jitter of brightness, >= 0
     * @param contrast jitter of contrast, >= 0
     * @param saturation jitter of saturation, >= 0
     * @param hue jitter of hue, 0 to 0.5
     */
    public record ColorJitterConfig(Double brightness, Double contrast, Double saturation, Double hue) {
        public ColorJitterConfig {
            brightness = brightness == null ? 0.0 : brightness;
            contrast = contrast == null ? 0.0 : contrast;
            saturation = saturation == null ? 0.0 : saturation;
            hue = hue == null ? 0.0 : hue;
            for (var e : java.util.Map.of("brightness", brightness, "contrast", contrast, "saturation", saturation)
                    .entrySet()) {
                if (!(e.getValue() >= 0) || Double.isInfinite(e.getValue())) {
                    throw new ConfigException("data.color_jitter." + e.getKey(), "must be >= 0, found " + e.getValue());
                }
            }
            if (!(hue >= 0 && hue <= 0.5)) {
                throw new ConfigException("data.color_jitter.hue", "must be 0 to 0.5, found " + hue);
            }
        }
    }

    /** The configured ColorJitter, or null. */
    public dev.finetune.data.ColorJitter colorJitterTransform() {
        return colorJitter == null ? null : new dev.finetune.data.ColorJitter(colorJitter.brightness(),
                colorJitter.contrast(), colorJitter.saturation(), colorJitter.hue());
    }

    /** The configured crop area range, or null for torchvision's default. */
    public dev.finetune.data.SeededRandomResizedCrop.Scale cropScaleRange() {
        return cropScale == null ? null
                : new dev.finetune.data.SeededRandomResizedCrop.Scale(cropScale.get(0), cropScale.get(1));
    }

    /** The configured AutoAugment policy, or null. */
    public dev.finetune.data.AutoAugment autoAugmentPolicy() {
        if (autoAugment == null) {
            return null;
        }
        return autoAugment.equals("ta_wide") ? dev.finetune.data.AutoAugment.trivialWide()
                : dev.finetune.data.AutoAugment.rand(raNumOps, raMagnitude);
    }

    /** Whether training draws anything at random from the images (crop and flip, AutoAugment, erasing). */
    public boolean randomTraining() {
        return augment || autoAugment != null || randomErase > 0 || colorJitter != null;
    }

    /**
     * IDX files as MNIST and Fashion-MNIST ship them: {@code train-images-idx3-ubyte[.gz]} etc. in {@code dir};
     * training from {@code train-*}, validation from {@code t10k-*}.
     *
     * @param dir folder with the four files
     * @param classes label ids to keep, renumbered 0..k-1 in this order (default all)
     * @param classNames names for the kept classes (default: Fashion-MNIST's when dir looks like it, else the ids)
     * @param trainPerClass first N training images of each class (default all)
     * @param valPerClass first N validation images of each class (default all)
     * @param trainClassLimits first N training images of each kept class, one number per class in the order of
     *     {@code classes} (an imbalanced subset); overrides {@code train_per_class}
     */
    public record IdxConfig(String dir, List<Integer> classes, List<String> classNames, Integer trainPerClass,
            Integer valPerClass, List<Integer> trainClassLimits) {
        public IdxConfig {
            if (trainClassLimits != null) {
                trainClassLimits = List.copyOf(trainClassLimits);
                if (trainClassLimits.stream().anyMatch(n -> n == null || n < 1)) {
                    throw new ConfigException("data.idx.train_class_limits", "must be positive numbers, found "
                            + trainClassLimits);
                }
                int kept = classes != null ? classes.size() : -1;
                if (kept >= 0 && trainClassLimits.size() != kept) {
                    throw new ConfigException("data.idx.train_class_limits", "has " + trainClassLimits.size()
                            + " limits for " + kept + " classes (data.idx.classes); give one per class");
                }
            }
            if (dir == null) {
                throw new ConfigException("data.idx.dir", "required: the folder with the IDX files");
            }
            if (classNames != null && classes != null && classNames.size() != classes.size()) {
                throw new ConfigException("data.idx.class_names", "has " + classNames.size() + " names for "
                        + classes.size() + " classes");
            }
        }
    }
}
