package dev.finetune.predict;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.data.ImageDecoder;
import dev.finetune.data.RgbImage;
import dev.finetune.data.TransformSpec;
import dev.finetune.engine.Engines;
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

    public Predictor(TrainedModel model) {
        this.model = model;
        this.transforms = model.preprocessing().toTransformSpec();
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
        var ps = model.parameterStore();
        for (Path f : expand(files)) {
            dev.finetune.train.StopSignal.throwIfRequested("prediction");
            try (NDManager m = model.manager().newSubManager();
                    Engines.NoGrad g = Engines.noGrad()) {
                NDArray x = load(f, m);
                NDArray logits = model.model().inferLogits(ps, x.expandDims(0));
                logits.attach(m);
                float[] p = logits.softmax(1).toFloatArray();
                out.add(new Prediction(f.toString(), topK(p, k)));
            }
        }
        return out;
    }

    /** The preprocessed tensor (3, H, W) float32 of an image file, as torchvision computes it. */
    public NDArray load(Path f, NDManager m) {
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
        int size = transforms.imageSize();
        return m.create(transforms.evalTensor(image), new Shape(3, size, size));
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
