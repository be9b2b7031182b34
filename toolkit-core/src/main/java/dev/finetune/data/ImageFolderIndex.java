package dev.finetune.data;

import dev.finetune.ConfigException;
import dev.finetune.FinetuneException;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystemLoopException;
import java.nio.file.FileVisitOption;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;

/**
 * The list of images in torchvision's {@code ImageFolder} layout, {@code root/<class>/<image>}, checked up front so a
 * data problem stops the run before any training instead of in the middle of epoch 3.
 *
 * <p>Rules, as in torchvision unless noted: classes are the sorted names of the root's sub-folders; images are files
 * ending in {@link #IMAGE_EXTENSIONS} (any case), found at any depth below their class folder; entries are ordered by
 * class, then by path. Unlike torchvision, hidden files and folders (name starting with {@code .}, e.g.
 * {@code .ipynb_checkpoints}) are ignored rather than becoming classes, and an empty class folder is an error rather
 * than a class that can never be predicted correctly.
 *
 * <p>{@link #open(Path, double, long)} adds the train/validation choice: a {@code root/train} + {@code root/val}
 * layout, or a seeded, stratified split of one folder.
 */
public final class ImageFolderIndex {
    /** File name endings counted as images (compared ignoring case). */
    public static final List<String> IMAGE_EXTENSIONS = List.of(".jpg", ".jpeg", ".png", ".bmp", ".gif");

    private static final String EXTENSION_LIST = String.join(" ", IMAGE_EXTENSIONS);

    /**
     * One image file.
     *
     * @param file the file
     * @param relativePath its path below the index root with {@code /} separators, e.g. {@code cat/001.jpg}
     * @param label index into {@link #classNames()}
     * @param size file size in bytes, at scan time
     * @param lastModifiedMillis modification time at scan time
     */
    public record Entry(Path file, String relativePath, int label, long size, long lastModifiedMillis) {}

    /**
     * The training and (optional) validation images of a dataset, sharing one class list.
     *
     * @param train training images
     * @param val validation images, empty if there is neither a {@code val/} folder nor a split fraction
     * @param description how the split was made, for logs and run metadata
     */
    public record Split(ImageFolderIndex train, Optional<ImageFolderIndex> val, String description) {}

    private final Path root;
    private final List<String> classNames;
    private final List<Entry> entries;

    private ImageFolderIndex(Path root, List<String> classNames, List<Entry> entries) {
        this.root = root;
        this.classNames = List.copyOf(classNames);
        this.entries = Collections.unmodifiableList(entries);
    }

    /**
     * Indexes one {@code root/<class>/<image>} tree.
     *
     * @throws DataException if the root is missing, has no class folders, or a class folder has no images
     */
    public static ImageFolderIndex scan(Path root) {
        Map<String, List<Entry>> byClass = scanClasses(root);
        return withClasses(root, new ArrayList<>(byClass.keySet()), byClass);
    }

    /**
     * Finds the training and validation images under {@code root}.
     *
     * <ul>
     *   <li>If {@code root/train} exists, it is the training set and {@code root/val}, if present, the validation
     *       set, which may lack classes but must not have classes training lacks. Other folders next to them (such as
     *       {@code test/}) are ignored.
     *   <li>Otherwise {@code root} itself is split: per class, {@code round(n * valSplit)} images (at least one if
     *       {@code valSplit > 0} and the class has two or more, never all) go to validation. Which ones depends only
     *       on the seed and each file's relative path, so adding a file moves no other file across the split.
     * </ul>
     *
     * @param valSplit fraction of each class held out for validation when there is no {@code val/}; 0 for none
     * @param seed picks the held-out images
     * @throws DataException for an unusable folder (see {@link #scan(Path)})
     * @throws FinetuneException of kind CONFIG if {@code valSplit} is outside [0, 1) or given although {@code val/}
     *     exists
     */
    public static Split open(Path root, double valSplit, long seed) {
        if (!(valSplit >= 0 && valSplit < 1)) {
            throw new ConfigException("", "val_split must be >= 0 and < 1, found " + valSplit);
        }
        Path trainDir = root.resolve("train");
        Path valDir = root.resolve("val");
        if (Files.isDirectory(trainDir)) {
            ImageFolderIndex train = scan(trainDir);
            if (!Files.isDirectory(valDir)) {
                return splitOff(train, valSplit, seed);
            }
            if (valSplit > 0) {
                throw new ConfigException("", "val_split is " + valSplit + " but " + valDir + " exists; use either the val/ folder"
                                + " (set val_split to 0) or the split (remove or rename val/)");
            }
            Map<String, List<Entry>> valByClass = scanClasses(valDir);
            for (String name : valByClass.keySet()) {
                if (!train.classNames.contains(name)) {
                    throw new DataException(
                            valDir.resolve(name),
                            "validation class folder " + name + " has no matching training folder " + trainDir
                                    .resolve(name) + "; rename or remove it");
                }
            }
            ImageFolderIndex val = withClasses(valDir, train.classNames, valByClass);
            return new Split(train, Optional.of(val), "train: " + trainDir + ", val: " + valDir);
        }
        if (Files.isDirectory(valDir)) {
            throw new DataException(
                    root,
                    "has a val/ folder but no train/ folder; put the training images in " + trainDir
                            + "/<class>/ (or rename val/ if it is a class)");
        }
        return splitOff(scan(root), valSplit, seed);
    }

    /** The folder the entries' relative paths start from. */
    public Path root() {
        return root;
    }

    /** Class names, sorted; label {@code i} means {@code classNames().get(i)}. */
    public List<String> classNames() {
        return classNames;
    }

    /** The images, ordered by label, then relative path. */
    public List<Entry> entries() {
        return entries;
    }

    /** Number of images. */
    public int size() {
        return entries.size();
    }

    /** Number of images per label. */
    public int[] classCounts() {
        int[] counts = new int[classNames.size()];
        for (Entry e : entries) {
            counts[e.label()]++;
        }
        return counts;
    }

    /**
     * This index relabelled to a model's classes, for evaluating it: each class folder is the class of the same name,
     * or, for a class whose name cannot be a folder name ({@code T-shirt/top}), the one whose letters and digits in
     * lower case are the folder's ({@code tshirt_top}, as {@link FashionMnistExport} writes it). Label {@code i} is
     * then {@code classes.get(i)}.
     *
     * @throws DataException unless folders and classes match one to one, naming what does not
     */
    public ImageFolderIndex alignedTo(List<String> classes) {
        if (classNames.equals(classes)) {
            return this;
        }
        int[] labelOf = new int[classNames.size()];
        List<String> unmatched = new ArrayList<>();
        java.util.Set<Integer> used = new java.util.HashSet<>();
        for (int f = 0; f < classNames.size(); f++) {
            String folder = classNames.get(f);
            int found = classes.indexOf(folder);
            if (found < 0 && !folderSafe(folder).isEmpty()) {
                List<Integer> candidates = new ArrayList<>();
                for (int c = 0; c < classes.size(); c++) {
                    if (folderSafe(classes.get(c)).equals(folderSafe(folder))) {
                        candidates.add(c);
                    }
                }
                found = candidates.size() == 1 ? candidates.get(0) : -1; // none, or ambiguous
            }
            if (found < 0 || !used.add(found)) {
                unmatched.add(folder);
            }
            labelOf[f] = found;
        }
        if (!unmatched.isEmpty() || used.size() != classes.size()) {
            List<String> missing = new ArrayList<>();
            for (int c = 0; c < classes.size(); c++) {
                if (!used.contains(c)) {
                    missing.add(classes.get(c));
                }
            }
            throw new DataException(root, "class folders " + classNames + " do not match the model's classes "
                    + classes + (unmatched.isEmpty() ? "" : "; no class for folder(s) " + unmatched)
                    + (missing.isEmpty() ? "" : "; no folder for class(es) " + missing) + ". Name each folder after"
                    + " its class (letters and digits are enough: tshirt_top for T-shirt/top)");
        }
        List<Entry> relabelled = new ArrayList<>();
        for (Entry e : entries) {
            relabelled.add(new Entry(e.file(), e.relativePath(), labelOf[e.label()], e.size(), e.lastModifiedMillis()));
        }
        relabelled.sort(Comparator.comparingInt(Entry::label).thenComparing(Entry::relativePath));
        return new ImageFolderIndex(root, classes, relabelled);
    }

    /** A class name's letters and digits, lower case: how a folder name matches a class name. */
    static String folderSafe(String name) {
        return name.toLowerCase(java.util.Locale.ROOT).replaceAll("[^a-z0-9]", "");
    }

    private static Split splitOff(ImageFolderIndex all, double valSplit, long seed) {
        if (valSplit == 0) {
            return new Split(all, Optional.empty(), "train: " + all.root + ", no validation set");
        }
        List<Entry> train = new ArrayList<>();
        List<Entry> val = new ArrayList<>();
        int from = 0;
        while (from < all.entries.size()) {
            int label = all.entries.get(from).label();
            int to = from;
            while (to < all.entries.size() && all.entries.get(to).label() == label) {
                to++;
            }
            List<Entry> ofClass = new ArrayList<>(all.entries.subList(from, to));
            int n = ofClass.size();
            int held = (int) Math.round(n * valSplit);
            held = Math.min(Math.max(held, n >= 2 ? 1 : 0), n - 1);
            ofClass.sort(Comparator.comparingLong((Entry e) -> splitKey(seed, e.relativePath()))
                    .thenComparing(Entry::relativePath));
            Set<String> heldOut = new HashSet<>();
            for (Entry e : ofClass.subList(0, held)) {
                heldOut.add(e.relativePath());
                val.add(e);
            }
            for (Entry e : all.entries.subList(from, to)) {
                if (!heldOut.contains(e.relativePath())) {
                    train.add(e);
                }
            }
            from = to;
        }
        Comparator<Entry> order = Comparator.comparingInt(Entry::label).thenComparing(Entry::relativePath);
        val.sort(order);
        String how = String.format(Locale.ROOT, "stratified val_split=%s seed=%d of %s", valSplit, seed, all.root);
        return new Split(
                new ImageFolderIndex(all.root, all.classNames, train),
                Optional.of(new ImageFolderIndex(all.root, all.classNames, val)),
                how);
    }

    /** A well-mixed 64-bit key per (seed, path); String.hashCode is fixed by the Java spec, so this is stable. */
    private static long splitKey(long seed, String relativePath) {
        long z = seed * 0x9E3779B97F4A7C15L + relativePath.hashCode();
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private static ImageFolderIndex withClasses(
            Path root, List<String> classNames, Map<String, List<Entry>> byClass) {
        List<Entry> all = new ArrayList<>();
        for (Map.Entry<String, List<Entry>> e : byClass.entrySet()) {
            int label = classNames.indexOf(e.getKey());
            for (Entry unlabelled : e.getValue()) {
                all.add(new Entry(
                        unlabelled.file(),
                        unlabelled.relativePath(),
                        label,
                        unlabelled.size(),
                        unlabelled.lastModifiedMillis()));
            }
        }
        all.sort(Comparator.comparingInt(Entry::label).thenComparing(Entry::relativePath));
        return new ImageFolderIndex(root, classNames, all);
    }

    /** Class name to its images (label not yet assigned), in sorted class order. */
    private static Map<String, List<Entry>> scanClasses(Path root) {
        if (!Files.exists(root)) {
            throw new DataException(
                    root, "data folder does not exist; expected one sub-folder per class: " + root + "/<class>/<image>");
        }
        if (!Files.isDirectory(root)) {
            throw new DataException(
                    root, "is a file, expected a data folder with one sub-folder per class: <folder>/<class>/<image>");
        }
        List<Path> classDirs = new ArrayList<>();
        int looseImages = 0;
        try (DirectoryStream<Path> children = Files.newDirectoryStream(root)) {
            for (Path child : children) {
                String name = child.getFileName().toString();
                if (name.startsWith(".")) {
                    continue;
                }
                if (Files.isDirectory(child)) {
                    classDirs.add(child);
                } else if (isImageName(name)) {
                    looseImages++;
                }
            }
        } catch (IOException e) {
            throw new DataException(root, "cannot be listed (" + e + ")", e);
        }
        if (classDirs.isEmpty()) {
            String found = looseImages > 0
                    ? " (found " + looseImages + " images directly in it: move them into a folder named after their class)"
                    : "";
            throw new DataException(
                    root,
                    "has no class folders" + found + "; expected one sub-folder per class: " + root
                            + "/<class>/<image>, e.g. " + root.resolve("cat").resolve("001.jpg"));
        }
        Map<String, List<Entry>> byClass = new TreeMap<>();
        for (Path classDir : classDirs) {
            byClass.put(classDir.getFileName().toString(), scanClass(root, classDir));
        }
        return new LinkedHashMap<>(byClass);
    }

    /**
     * Symbolic links are followed only where they lead inside the data folder: a link to {@code /usr} would otherwise
     * add a system folder's images to a class (and read files the user never meant to hand over).
     */
    private static void insideRoot(Path rootReal, Path p) throws IOException {
        Path real = p.toRealPath();
        if (!real.startsWith(rootReal)) {
            throw new DataException(p, "is a symbolic link out of the data folder " + rootReal + " (to " + real
                    + "); links may only point inside it: copy or move those images into the data folder");
        }
    }

    private static List<Entry> scanClass(Path root, Path classDir) {
        List<Entry> found = new ArrayList<>();
        List<String> otherFiles = new ArrayList<>();
        try {
            Path rootReal = root.toRealPath();
            insideRoot(rootReal, classDir);
            Files.walkFileTree(
                    classDir,
                    EnumSet.of(FileVisitOption.FOLLOW_LINKS),
                    Integer.MAX_VALUE,
                    new SimpleFileVisitor<>() {
                        @Override
                        public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs)
                                throws IOException {
                            boolean hidden = !dir.equals(classDir) && dir.getFileName().toString().startsWith(".");
                            if (hidden) {
                                return FileVisitResult.SKIP_SUBTREE;
                            }
                            if (Files.isSymbolicLink(dir)) {
                                insideRoot(rootReal, dir);
                            }
                            return FileVisitResult.CONTINUE;
                        }

                        @Override
                        public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                            String name = file.getFileName().toString();
                            if (name.startsWith(".") || !attrs.isRegularFile()) {
                                return FileVisitResult.CONTINUE;
                            }
                            if (Files.isSymbolicLink(file)) {
                                insideRoot(rootReal, file);
                            }
                            if (isImageName(name)) {
                                String relative = root.relativize(file).toString().replace('\\', '/');
                                found.add(new Entry(
                                        file, relative, -1, attrs.size(), attrs.lastModifiedTime().toMillis()));
                            } else {
                                otherFiles.add(name);
                            }
                            return FileVisitResult.CONTINUE;
                        }

                        @Override
                        public FileVisitResult visitFileFailed(Path file, IOException e) throws IOException {
                            if (e instanceof FileSystemLoopException) {
                                return FileVisitResult.CONTINUE; // a symlink cycle: seen it already
                            }
                            throw e;
                        }
                    });
        } catch (DataException e) {
            throw e;
        } catch (IOException e) {
            throw new DataException(classDir, "cannot be read (" + e + ")", e);
        }
        if (found.isEmpty()) {
            String others = otherFiles.isEmpty()
                    ? ""
                    : " (it has " + otherFiles.size() + " other file(s), e.g. " + otherFiles.get(0) + ")";
            throw new DataException(
                    classDir,
                    "class folder " + classDir.getFileName() + " has no images (" + EXTENSION_LIST + ")" + others
                            + "; remove it or add images");
        }
        return found;
    }

    /** Whether a file name ends in one of {@link #IMAGE_EXTENSIONS}, in any case. */
    public static boolean isImageName(String name) {
        String lower = name.toLowerCase(Locale.ROOT);
        for (String ext : IMAGE_EXTENSIONS) {
            if (lower.endsWith(ext)) {
                return true;
            }
        }
        return false;
    }
}
