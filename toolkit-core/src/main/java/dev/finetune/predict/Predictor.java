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
import dev.finetune.engine.NativeCopies;
import dev.finetune.metrics.ClassificationMetrics;
import dev.finetune.metrics.EpochMetrics;
import dev.finetune.train.StopSignal;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.IntFunction;

/**
 * Top-k predictions for image files, with the model's own evaluation preprocessing (for a 224-pixel model:
 * shorter side to 256, center crop 224, mean/std), exactly torchvision's on {@code PIL.Image.open(f).convert("RGB")}
 * (see {@link TransformSpec}), and no autograd graph on the calling thread.
 */
public final class Predictor {
    /** Tensors per forward pass unless told otherwise (views included), as {@code evaluate --batch-size}'s default. */
    public static final int DEFAULT_BATCH = 64;

    private final TrainedModel model;
    private final TransformSpec transforms;
    private final Tta tta;
    private final int batch;

    public Predictor(TrainedModel model) {
        this(model, Tta.NONE);
    }

    /** With test-time augmentation: the probabilities of {@code tta}'s views of each image, averaged. */
    public Predictor(TrainedModel model, Tta tta) {
        this(model, tta, DEFAULT_BATCH);
    }

    /**
     * @param batch tensors per forward pass, views included: {@code batch / views} images at a time (at least one),
     *     so that memory does not grow with the number of views
     */
    public Predictor(TrainedModel model, Tta tta, int batch) {
        if (batch < 1) {
            throw new IllegalArgumentException("batch must be >= 1, found " + batch);
        }
        this.model = model;
        this.transforms = model.preprocessing().toTransformSpec();
        if (tta == Tta.FIVE_CROP && transforms.resizeSize() <= transforms.imageSize()) {
            // torchvision's FiveCrop(c) of an image whose shorter side is c: the crops repeat the same pixels.
            throw new dev.finetune.FinetuneException(dev.finetune.ErrorKind.USAGE, "--tta five-crop: " + model.source()
                    + " resizes to " + transforms.resizeSize() + " px and crops " + transforms.imageSize()
                    + " px, so its five crops are the same image five times; use --tta flip, or a model trained with"
                    + " data.resize larger than data.image_size (torchvision's 256 for 224)");
        }
        this.tta = tta;
        this.batch = batch;
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

    /**
     * Predicts each file, {@code batch / views} files per forward pass (the next group decoded while the current one
     * runs); folders are expanded. The first unreadable file is a data error naming it.
     */
    public List<Prediction> predict(List<Path> files, int k) {
        List<Path> all = expand(files);
        List<Prediction> out = new ArrayList<>();
        inBatches(all.size(), "prediction", i -> decode(all.get(i)), (from, logp) -> {
            for (int j = 0; j < logp.length; j++) {
                out.add(new Prediction(all.get(from + j).toString(), topK(exp(logp[j]), k)));
            }
        });
        return out;
    }

    /**
     * Loss and metrics of the model on {@code data} with this predictor's test-time augmentation: the loss is the
     * cross-entropy of each image's averaged probabilities, the ranking that of the averaged probabilities. Without
     * augmentation this is the training evaluator's cross-entropy and ranking (tested equal), so {@code evaluate}
     * has this one loop.
     */
    public EpochMetrics evaluate(ImageDataset data) {
        int classes = model.classNames().size();
        ClassificationMetrics metrics = new ClassificationMetrics(classes);
        List<ImageDataset.Sample> samples = data.samples();
        inBatches(samples.size(), "evaluation", i -> samples.get(i).decode(), (from, logp) -> {
            for (int j = 0; j < logp.length; j++) {
                int label = samples.get(from + j).label();
                metrics.add(logp[j], label);
                metrics.addLoss(-logp[j][label], 1);
            }
        });
        return metrics.result();
    }

    private static float[] exp(float[] logp) {
        float[] p = new float[logp.length];
        for (int i = 0; i < p.length; i++) {
            p[i] = (float) Math.exp(logp[i]);
        }
        return p;
    }

    /** Receives the log of the averaged probabilities of images {@code from, from + 1, …}. */
    private interface BatchSink {
        void accept(int from, float[][] probabilities);
    }

    /**
     * Runs images {@code 0 … count-1} in groups of {@code batch / views}: one thread decodes and preprocesses the next
     * group while this one runs the network (decoding a 224-pixel JPEG costs a fifth of its forward on 2 cores).
     */
    private void inBatches(int count, String what, IntFunction<RgbImage> image, BatchSink sink) {
        int views = tta.viewCount();
        int per = Math.max(1, batch / views);
        ExecutorService decoder = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "predict-decode");
            t.setDaemon(true);
            return t;
        });
        try {
            Future<float[]> next = count == 0 ? null
                    : decoder.submit(() -> tensors(image, 0, Math.min(per, count)));
            for (int from = 0; from < count; from += per) {
                StopSignal.throwIfRequested(what);
                int n = Math.min(per, count - from);
                float[] x = await(next);
                int after = from + per;
                next = after >= count ? null
                        : decoder.submit(() -> tensors(image, after, Math.min(per, count - after)));
                try (NDManager m = model.manager().newSubManager();
                        Engines.NoGrad g = Engines.noGrad()) {
                    sink.accept(from, logProbabilities(x, n, views, m));
                }
            }
        } finally {
            decoder.shutdownNow();
        }
    }

    private static float[] await(Future<float[]> f) {
        try {
            return f.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw new IllegalStateException(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new FinetuneException(ErrorKind.INTERRUPTED, "interrupted while decoding images", e);
        }
    }

    /** The views of images {@code from … from+n-1}, preprocessed, as one (n·views, 3, S, S) buffer. */
    private float[] tensors(IntFunction<RgbImage> image, int from, int n) {
        int size = transforms.imageSize();
        int len = 3 * size * size;
        float[] out = new float[n * tta.viewCount() * len];
        int v = 0;
        for (int i = 0; i < n; i++) {
            for (RgbImage view : tta.views(image.apply(from + i), transforms)) {
                transforms.toTensor(view, out, v++ * len);
            }
        }
        return out;
    }

    /**
     * The log of each image's softmax averaged over its views, from their preprocessed tensors (image-major):
     * log-softmax, and over several views log-sum-exp minus log(views), so that a confidently wrong image has a large
     * finite loss where the log of an underflowed probability would be infinite.
     */
    private float[][] logProbabilities(float[] x, int n, int views, NDManager m) {
        int size = transforms.imageSize();
        NDArray logits = model.logits(NativeCopies.floats(m, x, new Shape((long) n * views, 3, size, size)));
        logits.attach(m);
        int classes = model.classNames().size();
        NDArray lp = logits.logSoftmax(1).reshape(n, views, classes);
        if (views > 1) {
            NDArray top = lp.max(new int[] {1}, true);
            lp = lp.sub(top).exp().sum(new int[] {1}).log().add(top.reshape(n, classes)).sub(Math.log(views));
        }
        float[] p = lp.toFloatArray();
        float[][] out = new float[n][];
        for (int i = 0; i < n; i++) {
            out[i] = Arrays.copyOfRange(p, i * classes, (i + 1) * classes);
        }
        return out;
    }

    /**
     * The class probabilities of one decoded image: the softmax of the logits, or with test-time augmentation the
     * mean of its views' softmaxes.
     */
    public float[] probabilities(RgbImage image, NDManager m) {
        return exp(logProbabilities(tensors(i -> image, 0, 1), 1, tta.viewCount(), m)[0]);
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
