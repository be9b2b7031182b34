package dev.finetune.checkpoint;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Enumeration;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * Reads a checkpoint of any supported format, recognised by its content rather than its file name (people name
 * safetensors files {@code .bin} and zips {@code .pt}).
 *
 * <ul>
 *   <li>a zip (starts with {@code PK}) holding {@code <archive>/data.pkl}: {@link CheckpointFormat#PYTORCH_PTH}
 *   <li>an 8-byte little-endian header length followed by <code>{</code>: {@link CheckpointFormat#SAFETENSORS}, or
 *       {@link CheckpointFormat#FINETUNE} when its {@code __metadata__} says {@code "format": "finetune-checkpoint"}
 * </ul>
 *
 * Legacy {@code torch.save} pickles (before PyTorch 1.6) and TorchScript archives are refused with instructions to
 * convert them: both can only be loaded by running code from the file.
 */
public final class Checkpoints {
    /** The {@code __metadata__} key that marks this toolkit's own checkpoints. */
    public static final String FORMAT_KEY = "format";
    /** The value of {@link #FORMAT_KEY} in this toolkit's own checkpoints. */
    public static final String FINETUNE_FORMAT = "finetune-checkpoint";

    static final String SUPPORTED = "supported formats: PyTorch .pth zip (torch.save since PyTorch 1.6), "
            + "safetensors, finetune checkpoint";

    static final String LEGACY_HINT = "looks like a legacy torch.save pickle (PyTorch before 1.6, or "
            + "_use_new_zipfile_serialization=False), which is not supported because only running the pickle can load "
            + "it. Convert it in Python with a recent PyTorch: torch.save(torch.load(f, map_location='cpu', "
            + "weights_only=True), 'new.pth') (or torch.save(model.state_dict(), 'new.pth') after loading the model "
            + "your usual way), or export safetensors with safetensors.torch.save_file";

    static final String TORCHSCRIPT_HINT = "is a TorchScript archive (torch.jit.save), which holds code and is not "
            + "supported. Convert it in Python: torch.save(torch.jit.load(f).state_dict(), 'weights.pth') with a "
            + "recent PyTorch, or export safetensors with safetensors.torch.save_file";

    private Checkpoints() {
    }

    /**
     * Reads {@code file}, whatever its supported format.
     *
     * @throws CheckpointException naming the file if it is missing, of an unknown or unsupported format, malformed,
     *     or unsafe
     */
    public static Checkpoint read(Path file) {
        return readerFor(detect(file)).read(file);
    }

    /**
     * Reads a checkpoint named as a user writes it: a file path, or {@code torchvision:resnet18} for the torchvision
     * ImageNet weights (downloaded once into PyTorch's own cache; see {@link TorchvisionWeights}).
     */
    public static Checkpoint read(String source) {
        return read(source, null);
    }

    /**
     * Like {@link #read(String)}, with the torchvision download settings given (a test's local server, an offline
     * cache); {@code null} means {@link TorchvisionWeights#fromEnvironment()}.
     */
    public static Checkpoint read(String source, TorchvisionWeights torchvision) {
        if (source.startsWith(EXPERIMENT_SCHEME)) {
            ExperimentRef ref = ExperimentRef.parse(source);
            throw new CheckpointException(Path.of(source), "names the " + ref.which() + " checkpoint of experiment '"
                    + ref.name() + "' in a `finetune experiment` sweep, which resolves it; outside a sweep give that"
                    + " run's file, e.g. runs/experiments/" + ref.name() + "/" + ref.file());
        }
        if (source.startsWith(TorchvisionWeights.SCHEME)) {
            TorchvisionWeights weights = torchvision != null ? torchvision : TorchvisionWeights.fromEnvironment();
            return new PthReader().read(weights.resolve(source));
        }
        return read(Path.of(source));
    }

    /**
     * {@code experiment:NAME}: the best checkpoint of the config named NAME earlier in the same
     * {@code finetune experiment} folder (pretrain from scratch, then fine-tune from it, in one sweep).
     */
    public static final String EXPERIMENT_SCHEME = "experiment:";

    /**
     * A parsed {@code experiment:NAME} or {@code experiment:NAME:ema} reference: the upstream config's name and which
     * of its checkpoints — {@code best} (the best epoch by {@code train.best_metric}) or {@code ema} (its weight EMA
     * after the last epoch, chosen by no validation metric; the upstream config needs {@code train.ema}).
     */
    public record ExperimentRef(String name, String which) {
        /** Parses {@code source}, which starts with {@link #EXPERIMENT_SCHEME}. */
        public static ExperimentRef parse(String source) {
            String rest = source.substring(EXPERIMENT_SCHEME.length());
            int colon = rest.lastIndexOf(':');
            if (colon > 0 && (rest.endsWith(":ema") || rest.endsWith(":best"))) {
                return new ExperimentRef(rest.substring(0, colon), rest.substring(colon + 1));
            }
            return new ExperimentRef(rest, "best");
        }

        /** The file inside the upstream run directory. */
        public String file() {
            return "checkpoints/" + which + ".safetensors";
        }
    }

    /** The reader for a format. */
    public static CheckpointReader readerFor(CheckpointFormat format) {
        return switch (format) {
            case PYTORCH_PTH -> new PthReader();
            case SAFETENSORS, FINETUNE -> new SafetensorsReader();
        };
    }

    /**
     * Recognises the format of {@code file} from its first bytes (and, for zips, their entry names; for safetensors,
     * the header's {@code __metadata__}).
     *
     * @throws CheckpointException if the file is missing or in no supported format
     */
    public static CheckpointFormat detect(Path file) {
        requireRegularFile(file);
        byte[] head = head(file, 16);
        if (head.length == 0) {
            throw new CheckpointException(file, "is empty; " + SUPPORTED);
        }
        // Safetensors first: its header length may happen to start with the bytes "PK", while in a zip byte 8 is
        // the low byte of the compression method (0 or 8), never '{'.
        if (head.length >= 9 && head[8] == '{') {
            long headerLength = ByteBuffer.wrap(head, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
            if (headerLength > 1) {
                return SafetensorsReader.isFinetune(file) ? CheckpointFormat.FINETUNE : CheckpointFormat.SAFETENSORS;
            }
        }
        if (head.length >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) {
            detectZip(file);
            return CheckpointFormat.PYTORCH_PTH;
        }
        if ((head[0] & 0xFF) == 0x80) {
            throw new CheckpointException(file, LEGACY_HINT);
        }
        throw new CheckpointException(file, "unknown checkpoint format; " + SUPPORTED);
    }

    private static void detectZip(Path file) {
        // Looks inside only to tell a TorchScript archive or a random zip apart; PthReader checks the rest.
        try (ZipFile zip = new ZipFile(file.toFile())) {
            boolean hasPickle = false;
            Enumeration<? extends ZipEntry> entries = zip.entries();
            while (entries.hasMoreElements()) {
                String name = entries.nextElement().getName();
                int slash = name.indexOf('/');
                String inner = slash > 0 ? name.substring(slash + 1) : name;
                if (inner.equals("constants.pkl") || inner.startsWith("code/")) {
                    throw new CheckpointException(file, TORCHSCRIPT_HINT);
                }
                hasPickle |= slash > 0 && inner.equals("data.pkl");
            }
            if (!hasPickle) {
                throw new CheckpointException(file, "is a zip archive without <archive>/data.pkl, so not a PyTorch "
                        + "checkpoint; " + SUPPORTED);
            }
        } catch (IOException e) {
            throw new CheckpointException(file, "truncated or corrupt zip archive (" + e.getMessage()
                    + "); the download or copy may be incomplete", e);
        }
    }

    static void requireRegularFile(Path file) {
        if (!Files.exists(file)) {
            throw new CheckpointException(file, "no such file");
        }
        if (Files.isDirectory(file)) {
            throw new CheckpointException(file, "is a directory, expected a checkpoint file");
        }
        if (!Files.isReadable(file)) {
            throw new CheckpointException(file, "is not readable (permission denied)");
        }
    }

    /** Up to {@code n} first bytes of the file. */
    static byte[] head(Path file, int n) {
        try (InputStream in = Files.newInputStream(file)) {
            return in.readNBytes(n);
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot read: " + e.getMessage(), e);
        }
    }
}
