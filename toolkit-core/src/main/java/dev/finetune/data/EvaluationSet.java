package dev.finetune.data;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * What {@code finetune evaluate --data PATH} reads, labelled in a model's class order: an image folder
 * ({@code PATH/<class>/…}, or {@code PATH/val/<class>/…} when it has one), or a folder of Fashion-MNIST's IDX files,
 * whose 10,000-image test split is the validation set {@code data.format: idx} trains against.
 *
 * @param dataset the images, labels in the model's class order
 * @param root the image folder read, or the IDX folder
 * @param description where they came from, for the report
 */
public record EvaluationSet(ImageDataset dataset, Path root, String description) {

    /**
     * Opens {@code data} for a model with these classes.
     *
     * @throws DataException when the folder's classes are not the model's (naming both), or it holds no images
     */
    public static EvaluationSet open(Path data, List<String> classes) {
        if (FashionMnist.holdsTestSplit(data)) {
            IdxImageDataset test = FashionMnist.testSetFor(data, classes);
            return new EvaluationSet(test, data, data + " (IDX test split, " + classes.size() + " of Fashion-MNIST's "
                    + FashionMnist.CLASS_NAMES.size() + " classes)");
        }
        Path root = Files.isDirectory(data.resolve("val")) ? data.resolve("val") : data;
        ImageFolderIndex index = ImageFolderIndex.scan(root).alignedTo(classes);
        return new EvaluationSet(new ImageFolderDataset(index), root, root.toString());
    }
}
