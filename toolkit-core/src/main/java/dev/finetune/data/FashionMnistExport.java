package dev.finetune.data;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;

/**
 * Writes a class subset of Fashion-MNIST as PNG image folders, {@code out/{train,val}/<class>/NNNNN.png}, for the
 * quickstart and the end-to-end tests: the first N images of each class in file order, from the training file for
 * {@code train/} and from the test ({@code t10k}) file for {@code val/}. {@code NNNNN} is the image's index in its IDX
 * file, so every PNG can be traced back. The output is byte-for-byte reproducible.
 *
 * <pre>
 * java -cp toolkit-core/target/classes dev.finetune.data.FashionMnistExport \
 *     /usr/share/datasets/fashion-mnist data/fashion-mnist-b 5,6,7,8,9 100 40
 * </pre>
 *
 * <p>Folder names are {@link FashionMnist#FOLDER_NAMES}. Refuses to write into an existing {@code train/} or
 * {@code val/} so a smaller export never leaves stale images of a bigger one behind.
 */
public final class FashionMnistExport {
    private static final String USAGE =
            "usage: FashionMnistExport <idx-dir> <out-dir> <class-ids, e.g. 5,6,7,8,9> <train-per-class>"
                    + " <val-per-class>";

    private FashionMnistExport() {}

    /** Command-line entry point; exits with the {@link ErrorKind} exit code on failure. */
    public static void main(String[] args) {
        try {
            int written = run(args);
            System.out.println("wrote " + written + " PNG files to " + Path.of(args[1]));
        } catch (FinetuneException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(e.kind().exitCode());
        }
    }

    /**
     * Parses the arguments and exports.
     *
     * @return number of files written
     */
    public static int run(String[] args) {
        if (args.length != 5) {
            throw new FinetuneException(ErrorKind.USAGE, USAGE);
        }
        int[] classIds;
        int trainCount;
        int valCount;
        try {
            String[] parts = args[2].split(",");
            classIds = new int[parts.length];
            for (int i = 0; i < parts.length; i++) {
                classIds[i] = Integer.parseInt(parts[i].trim());
            }
            trainCount = Integer.parseInt(args[3]);
            valCount = Integer.parseInt(args[4]);
        } catch (NumberFormatException e) {
            throw new FinetuneException(ErrorKind.USAGE, "not a number: " + e.getMessage() + "\n" + USAGE);
        }
        if (trainCount < 1 || valCount < 0) {
            throw new FinetuneException(
                    ErrorKind.USAGE, "train count must be >= 1 and val count >= 0, found " + trainCount + " and "
                            + valCount);
        }
        return export(Path.of(args[0]), Path.of(args[1]), classIds, trainCount, valCount);
    }

    /**
     * Exports {@code trainCount} training and {@code valCount} validation images of each class in {@code classIds}.
     *
     * @return number of files written
     */
    public static int export(Path idxDir, Path outDir, int[] classIds, int trainCount, int valCount) {
        int written = 0;
        written += exportSplit(FashionMnist.readTrain(idxDir), outDir.resolve("train"), classIds, trainCount);
        if (valCount > 0) {
            written += exportSplit(FashionMnist.readTest(idxDir), outDir.resolve("val"), classIds, valCount);
        }
        return written;
    }

    private static int exportSplit(IdxImages data, Path splitDir, int[] classIds, int perClass) {
        if (Files.exists(splitDir)) {
            throw new FinetuneException(
                    ErrorKind.OUTPUT, splitDir + ": already exists; delete it first to regenerate the export");
        }
        IdxImageDataset subset = IdxImageDataset.builder()
                .images(data)
                .classNames(FashionMnist.CLASS_NAMES)
                .classes(classIds)
                .limitPerClass(perClass)
                .build();
        int[] counts = subset.classCounts();
        for (int i = 0; i < classIds.length; i++) {
            if (counts[i] < perClass) {
                throw new DataException(
                        data.labelsFile(),
                        "has only " + counts[i] + " images of class " + classIds[i] + " (" + subset.classNames().get(i)
                                + "), " + perClass + " were asked for; ask for fewer");
            }
        }
        List<Path> classDirs = new ArrayList<>();
        for (int id : classIds) {
            classDirs.add(splitDir.resolve(FashionMnist.FOLDER_NAMES.get(id)));
        }
        int written = 0;
        try {
            for (Path dir : classDirs) {
                Files.createDirectories(dir);
            }
            for (int i = 0; i < subset.size(); i++) {
                ImageDataset.Sample sample = subset.samples().get(i);
                BufferedImage gray = new BufferedImage(data.cols(), data.rows(), BufferedImage.TYPE_BYTE_GRAY);
                gray.getRaster().setDataElements(0, 0, data.cols(), data.rows(), data.image(subset.fileIndex(i)));
                Path file = classDirs.get(sample.label()).resolve(String.format("%05d.png", subset.fileIndex(i)));
                if (!ImageIO.write(gray, "png", file.toFile())) {
                    throw new IOException("no PNG writer in this Java runtime");
                }
                written++;
            }
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, splitDir + ": cannot write the export (" + e + ")", e);
        }
        return written;
    }
}
