package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.engine.Engines;
import dev.finetune.predict.Predictor;
import dev.finetune.predict.TrainedModel;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An image folder with benign files of odd, non-square sizes (a 29x28 PNG among them) and
 * {@code image_size: 32, resize: 32}: every image becomes exactly 32x32, so {@code train} (with and without
 * augmentation) and {@code evaluate} exit 0. They used to crash with exit 1 when DJL's centre crop skipped the
 * 29x28 image (33x32 after the resize) and the batch could not be stacked. The export sidecar's torchvision recipe,
 * run by Debian's torchvision, gives exactly the tensor {@code predict} feeds the model.
 */
class CliOddSizeImagesTest {
    @TempDir
    static Path tmp;

    static Path data;

    @BeforeAll
    static void writeImages() throws IOException {
        data = tmp.resolve("odd");
        int[][] sizes = {{29, 28}, {28, 29}, {33, 31}, {97, 61}, {15, 40}, {32, 32}};
        for (String split : new String[] {"train", "val"}) {
            for (int label = 0; label < 2; label++) {
                for (int i = 0; i < sizes.length; i++) {
                    String ext = i % 2 == 0 ? "png" : "jpg";
                    Path file = data.resolve(split + "/" + (label == 0 ? "stripes" : "rings") + "/" + i + "." + ext);
                    write(file, sizes[i][0], sizes[i][1], label, split.length() + i);
                }
            }
        }
    }

    /** Class 0: vertical stripes; class 1: rings; plus a per-file tint. */
    private static void write(Path file, int width, int height, int label, int seed) throws IOException {
        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                double v = label == 0
                        ? Math.sin(x * 0.9)
                        : Math.sin(Math.hypot(x - width / 2.0, y - height / 2.0) * 0.9);
                int g = (int) (127.5 + 127 * v);
                image.setRGB(x, y, ((g + 7 * seed) & 0xFF) << 16 | g << 8 | (255 - g));
            }
        }
        Files.createDirectories(file.getParent());
        String format = file.toString().endsWith("png") ? "png" : "jpg";
        if (!ImageIO.write(image, format, file.toFile())) {
            throw new IOException("no writer for " + format);
        }
    }

    private static Path config(String name, boolean augment) throws IOException {
        String yaml = "name: " + name + "\n"
                + "model:\n"
                + "  arch: resnet18\n"
                + "  checkpoint: " + Cli.repo().resolve("models/resnet18-fmnist-a.safetensors") + "\n"
                + "  head: {classes: auto}\n"
                + "freeze: {default: freeze, rules: [{train: \"fc.*\"}]}\n"
                + "optimizer: {name: sgd, lr: 0.01, momentum: 0.9}\n"
                + "data:\n"
                + "  root: " + data + "\n"
                + "  image_size: 32\n"
                + "  resize: 32\n"
                + "  augment: " + augment + "\n"
                + "  workers: 2\n"
                + "train: {epochs: 2, batch_size: 4, seed: 3}\n";
        Path f = tmp.resolve(name + ".yaml");
        Files.writeString(f, yaml);
        return f;
    }

    @Test
    void trainAndEvaluateExitZeroWithResizeEqualToCrop() throws Exception {
        Path run = tmp.resolve("run-eval-transforms");
        Cli.Result train = Cli.run("train", "-c", config("odd", false).toString(), "--run-dir", run.toString(),
                "--quiet");
        assertEquals(0, train.code(), train.err() + train.out());
        Cli.Result evaluate = Cli.run("evaluate", "--checkpoint", run.toString(), "--data", data.toString(), "--json");
        assertEquals(0, evaluate.code(), evaluate.err() + evaluate.out());
        assertEquals(12, new ObjectMapper().readTree(evaluate.out()).get("images").asInt());
        Cli.Result predict = Cli.run("predict", "--checkpoint", run.toString(),
                data.resolve("val/stripes/0.png").toString());
        assertEquals(0, predict.code(), predict.err() + predict.out());
    }

    @Test
    void trainWithRandomResizedCropAndFlipExitsZero() {
        Path run = tmp.resolve("run-augmented");
        try {
            Cli.Result train = Cli.run("train", "-c", config("odd-augmented", true).toString(), "--run-dir",
                    run.toString(), "--quiet");
            assertEquals(0, train.code(), train.err() + train.out());
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void exportSidecarRecipeGivesPredictsTensorInTorchvision() throws Exception {
        Path run = tmp.resolve("run-export");
        Cli.Result train = Cli.run("train", "-c", config("odd-export", false).toString(), "--run-dir",
                run.toString(), "--quiet");
        assertEquals(0, train.code(), train.err() + train.out());
        Path pth = tmp.resolve("odd.pth");
        Cli.Result export = Cli.run("export", "--checkpoint", run.toString(), "--format", "pth", "--out",
                pth.toString());
        assertEquals(0, export.code(), export.err());
        Path sidecar = tmp.resolve("odd.pth.json");
        JsonNode prep = new ObjectMapper().readTree(sidecar.toFile()).get("preprocessing");
        assertEquals("transforms.Compose([transforms.Resize(32), transforms.CenterCrop(32), transforms.ToTensor(),"
                        + " transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])"
                        + "(PIL.Image.open(f).convert(\"RGB\"))",
                prep.get("torchvision").asText());
        Engines.pytorch();
        try (TrainedModel model = TrainedModel.open(run.toString(), null);
                NDManager manager = NDManager.newBaseManager()) {
            Predictor predictor = new Predictor(model);
            double worst = 0;
            String[] images = {"val/stripes/0.png", "val/rings/3.jpg", "train/rings/4.png"};
            java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of(
                    Cli.repo().resolve("scripts/reference/check_recipe.py").toString(), sidecar.toString()));
            for (int i = 0; i < images.length; i++) {
                args.add(data.resolve(images[i]).toString());
                args.add(tmp.resolve("recipe" + i + ".f32").toString());
            }
            String shapes = Cli.python(args.toArray(String[]::new));
            assertEquals(images.length, shapes.lines().filter(l -> l.startsWith("(3, 32, 32)")).count(), shapes);
            for (int i = 0; i < images.length; i++) {
                String image = images[i];
                Path f = data.resolve(image);
                Path out = tmp.resolve("recipe" + i + ".f32");
                float[] theirs = new float[3 * 32 * 32];
                ByteBuffer.wrap(Files.readAllBytes(out)).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(theirs);
                float[] ours = predictor.load(f, manager).toFloatArray();
                assertEquals(theirs.length, ours.length);
                for (int j = 0; j < ours.length; j++) {
                    worst = Math.max(worst, Math.abs(ours[j] - theirs[j]));
                }
                assertTrue(Arrays.equals(ours, theirs), image + ": the recipe's tensor differs by " + worst);
            }
            System.out.println("sidecar recipe vs predict input: max |diff| = " + worst);
        }
    }
}
