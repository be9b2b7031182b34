package dev.finetune.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.testing.TorchReference;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageTypeSpecifier;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.metadata.IIOMetadataNode;
import javax.imageio.stream.ImageOutputStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.NodeList;

/**
 * The toolkit's preprocessing equals torchvision 0.14 + Pillow 9.4 (Debian's), on files of every supported kind
 * written by {@code scripts/reference/preprocess_reference.py}: PNG of every bit depth and colour type (palette with
 * and without tRNS, 16-bit, interlaced, gAMA, iCCP), JPEG (4:2:0 / 4:2:2 / 4:4:4, quality 75-95, progressive,
 * grayscale, ICC, Adobe RGB, CMYK, YCCK; 4:4:0 and 4:1:1 from the JDK's encoder), BMP (1/8/16/24/32-bit) and GIF
 * (frames off the screen's origin), in odd non-square sizes.
 *
 * <ul>
 *   <li>decoding: {@link ImageDecoder} gives the uint8 array of {@code Image.open(f).convert("RGB")}, byte for byte;
 *   <li>{@code Resize(n)} (up and down), {@code CenterCrop(c)} (with padding) and {@code F.resized_crop} on PIL's
 *       decoded array give PIL's uint8 arrays, byte for byte, and the same shapes;
 *   <li>{@code Resize + CenterCrop + ToTensor + Normalize} from the file gives torchvision's float32 tensor with a
 *       maximum difference of 0, always of shape (3, c, c) (including resize = crop = 32 on a 29x28 image).
 * </ul>
 */
class PreprocessingParityTest {
    @TempDir static Path out;
    private static JsonNode manifest;
    private static float[] mean;
    private static float[] std;

    @BeforeAll
    static void generate() throws Exception {
        // JPEG subsamplings Pillow cannot write (4:4:0, 4:1:1), written by the JDK's encoder and decoded by PIL.
        Path extra = Files.createDirectories(out.resolve("extra"));
        List<String> args = new ArrayList<>(List.of(
                TorchReference.repoRoot().resolve("scripts/reference/preprocess_reference.py").toString(),
                out.toString()));
        args.add(jdkJpeg(extra.resolve("jdk_jpg_440_61x43.jpg"), 61, 43, 1, 2).toString());
        args.add(jdkJpeg(extra.resolve("jdk_jpg_411_67x29.jpg"), 67, 29, 4, 1).toString());
        args.add(jdkJpeg(extra.resolve("jdk_jpg_420_33x35.jpg"), 33, 35, 2, 2).toString());
        TorchReference.runPython(args.toArray(String[]::new));
        manifest = new ObjectMapper().readTree(out.resolve("manifest.json").toFile());
        mean = floats(manifest.get("mean"));
        std = floats(manifest.get("std"));
    }

    /** A JPEG whose luma has sampling factors h x v (chroma 1 x 1), from the JDK's encoder. */
    private static Path jdkJpeg(Path file, int width, int height, int h, int v) throws IOException {
        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        java.util.SplittableRandom random = new java.util.SplittableRandom(width * 31L + height);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int r = (int) (127 + 100 * Math.sin(x * 0.3 + y * 0.1)) + random.nextInt(20);
                int g = (int) (127 + 100 * Math.cos(y * 0.25 - x * 0.05)) + random.nextInt(20);
                int b = (x * 255 / width + y * 255 / height) / 2;
                image.setRGB(x, y, Math.min(r, 255) << 16 | Math.min(g, 255) << 8 | b);
            }
        }
        ImageWriter writer = ImageIO.getImageWritersByFormatName("jpeg").next();
        ImageWriteParam param = writer.getDefaultWriteParam();
        param.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
        param.setCompressionQuality(0.85f);
        IIOMetadata metadata = writer.getDefaultImageMetadata(new ImageTypeSpecifier(image), param);
        String format = "javax_imageio_jpeg_image_1.0";
        IIOMetadataNode tree = (IIOMetadataNode) metadata.getAsTree(format);
        NodeList components = tree.getElementsByTagName("componentSpec");
        for (int i = 0; i < components.getLength(); i++) {
            IIOMetadataNode c = (IIOMetadataNode) components.item(i);
            c.setAttribute("HsamplingFactor", Integer.toString(i == 0 ? h : 1));
            c.setAttribute("VsamplingFactor", Integer.toString(i == 0 ? v : 1));
        }
        metadata.setFromTree(format, tree);
        try (ImageOutputStream stream = ImageIO.createImageOutputStream(file.toFile())) {
            writer.setOutput(stream);
            writer.write(null, new IIOImage(image, null, metadata), param);
        } finally {
            writer.dispose();
        }
        return file;
    }

    private static float[] floats(JsonNode node) {
        float[] v = new float[node.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) node.get(i).asDouble();
        }
        return v;
    }

    private static byte[] bytes(JsonNode entry, String field) throws IOException {
        return Files.readAllBytes(out.resolve(entry.get(field).asText()));
    }

    /** PIL's decoded image of a manifest entry. */
    private static RgbImage reference(JsonNode image) throws IOException {
        return RgbImage.of(image.get("width").asInt(), image.get("height").asInt(), bytes(image, "decoded"));
    }

    /** Number of differing bytes and the largest difference. */
    private static int[] compare(byte[] expected, byte[] actual) {
        if (expected.length != actual.length) {
            return new int[] {-1, -1};
        }
        int count = 0;
        int max = 0;
        for (int i = 0; i < expected.length; i++) {
            int d = Math.abs((expected[i] & 0xFF) - (actual[i] & 0xFF));
            if (d != 0) {
                count++;
                max = Math.max(max, d);
            }
        }
        return new int[] {count, max};
    }

    private static void report(String what, Map<String, Double> maxByKind, List<String> failures) {
        StringBuilder text = new StringBuilder(what + ": max |difference| by image kind\n");
        maxByKind.forEach((kind, max) -> text.append(String.format(Locale.ROOT, "  %-55s %s%n", kind, max)));
        System.out.print(text);
        assertTrue(failures.isEmpty(), what + " differs from PIL/torchvision:\n" + String.join("\n", failures));
    }

    @Test
    void decodingEqualsPilConvertRgb() throws Exception {
        Map<String, Double> maxByKind = new TreeMap<>();
        List<String> failures = new ArrayList<>();
        for (JsonNode image : manifest.get("images")) {
            String name = image.get("name").asText();
            RgbImage ours = ImageDecoder.read(out.resolve(image.get("file").asText()));
            String shape = ours.width() + "x" + ours.height();
            String expectedShape = image.get("width").asInt() + "x" + image.get("height").asInt();
            int[] diff = compare(bytes(image, "decoded"), ours.toByteArray());
            if (!shape.equals(expectedShape)) {
                failures.add(name + ": " + shape + ", PIL " + expectedShape);
                diff = new int[] {-1, 255};
            } else if (diff[0] != 0) {
                failures.add(name + ": " + diff[0] + " bytes differ, by up to " + diff[1]);
            }
            String kind = image.get("kind").asText() + " (PIL mode " + image.get("pil_mode").asText() + ")";
            maxByKind.merge(kind, (double) diff[1], Math::max);
        }
        assertEquals(66, manifest.get("images").size(), "the reference script's image set");
        report("decoded uint8", maxByKind, failures);
    }

    @Test
    void resizeCropAndResizedCropEqualPillowOnUint8() throws Exception {
        Map<String, Double> maxByKind = new TreeMap<>();
        List<String> failures = new ArrayList<>();
        int checked = 0;
        for (JsonNode image : manifest.get("images")) {
            String name = image.get("name").asText();
            RgbImage input = reference(image);
            for (JsonNode r : image.get("resized")) {
                RgbImage ours = PilTransforms.resize(input, r.get("n").asInt());
                checked += check(name + " Resize(" + r.get("n").asInt() + ")", "Resize", r.get("width").asInt(),
                        r.get("height").asInt(), bytes(r, "file"), ours, maxByKind, failures);
            }
            for (JsonNode c : image.get("cropped")) {
                int size = c.get("c").asInt();
                RgbImage ours = PilTransforms.centerCrop(input, size);
                checked += check(name + " CenterCrop(" + size + ")", "CenterCrop", size, size, bytes(c, "file"), ours,
                        maxByKind, failures);
            }
            for (JsonNode c : image.get("resized_crops")) {
                int size = c.get("size").asInt();
                RgbImage ours = PilTransforms.resizedCrop(input, c.get("top").asInt(), c.get("left").asInt(),
                        c.get("height").asInt(), c.get("width").asInt(), size);
                checked += check(name + " resized_crop(" + c.get("top") + ", " + c.get("left") + ", "
                                + c.get("height") + ", " + c.get("width") + ", " + size + ")",
                        "resized_crop", size, size, bytes(c, "file"), ours, maxByKind, failures);
            }
        }
        System.out.println(checked + " resize / crop / resized_crop outputs compared");
        report("uint8 after the transform", maxByKind, failures);
    }

    /** Bicubic, as torchvision's EfficientNet-B0..B3 weights were published with it: Pillow's bytes exactly. */
    @Test
    void bicubicResizeAndResizedCropEqualPillowOnUint8() throws Exception {
        Map<String, Double> maxByKind = new TreeMap<>();
        List<String> failures = new ArrayList<>();
        int checked = 0;
        for (JsonNode image : manifest.get("images")) {
            String name = image.get("name").asText();
            RgbImage input = reference(image);
            for (JsonNode r : image.get("resized_bicubic")) {
                RgbImage ours = PilTransforms.resize(input, r.get("n").asInt(), Interpolation.BICUBIC);
                checked += check(name + " Resize(" + r.get("n").asInt() + ", BICUBIC)", "Resize bicubic",
                        r.get("width").asInt(), r.get("height").asInt(), bytes(r, "file"), ours, maxByKind, failures);
            }
            for (JsonNode c : image.get("resized_crops_bicubic")) {
                int size = c.get("size").asInt();
                RgbImage ours = PilTransforms.resizedCrop(input, c.get("top").asInt(), c.get("left").asInt(),
                        c.get("height").asInt(), c.get("width").asInt(), size, Interpolation.BICUBIC);
                checked += check(name + " resized_crop(" + c.get("top") + ", " + c.get("left") + ", "
                                + c.get("height") + ", " + c.get("width") + ", " + size + ", BICUBIC)",
                        "resized_crop bicubic", size, size, bytes(c, "file"), ours, maxByKind, failures);
            }
            for (JsonNode t : image.get("tensors_bicubic")) {
                int resize = t.get("resize").asInt();
                int crop = t.get("crop").asInt();
                TransformSpec spec = new TransformSpec(crop, resize, false, false, mean, std, Interpolation.BICUBIC);
                byte[] raw = bytes(t, "file");
                float[] expected = new float[raw.length / 4];
                ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(expected);
                double max = TorchReference.maxAbsDiff(expected, spec.evalTensor(input));
                if (max != 0) {
                    failures.add(name + " Resize(" + resize + ", BICUBIC) CenterCrop(" + crop + "): max |diff| " + max);
                }
                maxByKind.merge("tensor bicubic @ " + resize + "/" + crop, max, Math::max);
                checked++;
            }
        }
        System.out.println(checked + " bicubic outputs compared");
        report("bicubic, uint8 and float32", maxByKind, failures);
    }

    private static int check(String what, String kind, int width, int height, byte[] expected, RgbImage ours,
            Map<String, Double> maxByKind, List<String> failures) {
        if (ours.width() != width || ours.height() != height) {
            failures.add(what + ": " + ours.width() + "x" + ours.height() + ", PIL " + width + "x" + height);
            maxByKind.merge(kind, 255.0, Math::max);
            return 1;
        }
        int[] diff = compare(expected, ours.toByteArray());
        if (diff[0] != 0) {
            failures.add(what + ": " + diff[0] + " bytes differ, by up to " + diff[1]);
        }
        maxByKind.merge(kind, (double) diff[1], Math::max);
        return 1;
    }

    @Test
    void tensorsFromTheFileEqualTorchvisionExactly() throws Exception {
        Map<String, Double> maxByKind = new TreeMap<>();
        List<String> failures = new ArrayList<>();
        int checked = 0;
        for (JsonNode image : manifest.get("images")) {
            String name = image.get("name").asText();
            RgbImage decoded = ImageDecoder.read(out.resolve(image.get("file").asText()));
            for (JsonNode t : image.get("tensors")) {
                int resize = t.get("resize").asInt();
                int crop = t.get("crop").asInt();
                TransformSpec spec = new TransformSpec(crop, resize, false, false, mean, std);
                float[] ours = spec.evalTensor(decoded);
                byte[] raw = bytes(t, "file");
                float[] expected = new float[raw.length / 4];
                ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(expected);
                assertEquals(3 * crop * crop, expected.length, name + ": torchvision's tensor is (3, c, c)");
                assertEquals(3 * crop * crop, ours.length, name + ": every output is (3, c, c)");
                double max = TorchReference.maxAbsDiff(expected, ours);
                if (max != 0) {
                    failures.add(name + " Resize(" + resize + ") CenterCrop(" + crop + "): max |diff| " + max);
                }
                maxByKind.merge(image.get("kind").asText() + " @ " + resize + "/" + crop, max, Math::max);
                checked++;
            }
        }
        System.out.println(checked + " tensors compared");
        report("float32 tensor (Resize, CenterCrop, ToTensor, Normalize)", maxByKind, failures);
    }
}
