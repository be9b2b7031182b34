package dev.finetune.predict;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.data.ImageDataset;
import dev.finetune.data.ImageDecoder;
import dev.finetune.data.RgbImage;
import dev.finetune.data.TransformSpec;
import dev.finetune.engine.Engines;
import dev.finetune.metrics.ClassificationMetrics;
import dev.finetune.metrics.EpochMetrics;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Top-k predictions for image files, with the model's own evaluation preprocessing (for a 224-pixel model:
 * shorter side to 256, center crop 224, mean/std), exactly torchvision's on {@code PIL.Image.open(f).convert("RGB")}
 * (see {@link TransformSpec}), and no autograd graph on the calling thread.
 */
public final class Predictor {
    private final TrainedModel model;
    private final TransformSpec transforms;
    private final Tta tta;

    public Predictor(TrainedModel model) {
        this(model, Tta.NONE);
    }

    /** With test-time augmentation: the probabilities of {@code tta}'s views of each image, averaged. */
    public Predictor(TrainedModel model, Tta tta) {
        this.model = model;
        this.transforms = model.preprocessing().toTransformSpec();
        this.tta = tta;
    }

    /**
     * One image's result.
     *
     * @param file the image
     * @param top the k most probable classes, most probable first
     */
    public record Prediction(String file, List<Scored> top) {}

    /**
     * A class and its softmax probability.
     *
     * @param index class index
     * @param label class name
     * @param probability softmax probability
     */
    public record Scored(int index, String label, double probability) {}

    /**
     * The image files that {@code paths} name: a file as it is, a folder as every image below it (by extension, sorted
     * by path, symbolic links not followed).
     */
    public static List<Path> expand(List<Path> paths) {
        List<Path> out = new ArrayList<>();
        for (Path p : paths) {
            if (!Files.isDirectory(p)) {
                out.add(p);
                continue;
            }
            try (var s = Files.walk(p)) {
                List<Path> images = s.filter(f -> Files.isRegularFile(f, java.nio.file.LinkOption.NOFOLLOW_LINKS)
                                && dev.finetune.data.ImageFolderIndex.isImageName(f.getFileName().toString()))
                        .sorted()
                        .toList();
                if (images.isEmpty()) {
                    throw new FinetuneException(ErrorKind.DATA, p + ": a folder with no images ("
                            + String.join(" ", dev.finetune.data.ImageFolderIndex.IMAGE_EXTENSIONS) + ")");
                }
                out.addAll(images);
            } catch (java.io.IOException e) {
                throw new FinetuneException(ErrorKind.DATA, p + ": cannot list the folder: " + e.getMessage(), e);
            }
        }
        return out;
    }

    /** Predicts each file (one at a time; each unreadable file is a data error naming it); folders are expanded. */
    public List<Prediction> predict(List<Path> files, int k) {
        List<Prediction> out = new ArrayList<>();
        for (Path f : expand(files)) {
            dev.finetune.train.StopSignal.throwIfRequested("prediction");
            try (NDManager m = model.manager().newSubManager();
                    Engines.NoGrad g = Engines.noGrad()) {
                out.add(new Prediction(f.toString(), topK(probabilities(decode(f), m), k)));
            }
        }
        return out;
    }

    /**
     * Loss and metrics of the model on {@code data} with this predictor's test-time augmentation, image by image: the
     * loss is the cross-entropy of the averaged probabilities, the ranking that of the averaged probabilities.
     */
    public EpochMetrics evaluate(ImageDataset data) {
        int classes = model.classNames().size();
        ClassificationMetrics metrics = new ClassificationMetrics(classes);
        for (ImageDataset.Sample s : data.samples()) {
            dev.finetune.train.StopSignal.throwIfRequested("evaluation");
            try (NDManager m = model.manager().newSubManager();
                    Engines.NoGrad g = Engines.noGrad()) {
                float[] p = probabilities(s.decode(), m);
                float[] logp = new float[classes];
                for (int c = 0; c < classes; c++) {
                    logp[c] = (float) Math.log(p[c]);
                }
                metrics.add(logp, s.label());
                metrics.addLoss(-Math.log(p[s.label()]), 1);
            }
        }
        return metrics.result();
    }

    /**
     * The class probabilities of one decoded image: the softmax of the logits, or with test-time augmentation the
     * mean of its views' softmaxes.
     */
    public float[] probabilities(RgbImage image, NDManager m) {
        List<RgbImage> views = tta.views(image, transforms);
        int size = transforms.imageSize();
        int len = 3 * size * size;
        float[] batch = new float[views.size() * len];
        for (int v = 0; v < views.size(); v++) {
            transforms.toTensor(views.get(v), batch, v * len);
        }
        NDArray x = m.create(batch, new Shape(views.size(), 3, size, size));
        NDArray logits = model.logits(x);
        logits.attach(m);
        return logits.softmax(1).mean(new int[] {0}).toFloatArray();
    }

    /** The preprocessed tensor (3, H, W) float32 of an image file, as torchvision computes it. */
    public NDArray load(Path f, NDManager m) {
        int size = transforms.imageSize();
        return m.create(transforms.evalTensor(decode(f)), new Shape(3, size, size));
    }

    /** An image file as {@code PIL.Image.open(f).convert("RGB")}; an unreadable file is a data error naming it. */
    public static RgbImage decode(Path f) {
        if (!Files.isRegularFile(f)) {
            throw new FinetuneException(ErrorKind.DATA, f + ": no such image file");
        }
        RgbImage image;
        try {
            image = ImageDecoder.read(f);
        } catch (IOException | RuntimeException e) {
            throw new FinetuneException(ErrorKind.DATA, f + ": cannot decode the image (" + e.getMessage()
                    + "); supported: png, jpeg, bmp, gif", e);
        }
        return image;
    }

    private List<Scored> topK(float[] p, int k) {
        List<Scored> all = new ArrayList<>();
        for (int i = 0; i < p.length; i++) {
            all.add(new Scored(i, model.classNames().get(i), p[i]));
        }
        all.sort((a, b) -> Double.compare(b.probability(), a.probability()));
        return List.copyOf(all.subList(0, Math.min(k, all.size())));
    }
}
