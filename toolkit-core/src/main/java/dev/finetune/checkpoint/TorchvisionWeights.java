package dev.finetune.checkpoint;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.io.AtomicFiles;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The torchvision ImageNet weights, named {@code torchvision:resnet18} ({@code torchvision:mobilenet_v3_large},
 * {@code torchvision:resnet50:IMAGENET1K_V2} … for every architecture the toolkit builds), fetched once into PyTorch's own cache
 * ({@code $TORCH_HOME/hub/checkpoints}, by default {@code ~/.cache/torch/hub/checkpoints} or
 * {@code $XDG_CACHE_HOME/torch/hub/checkpoints}) so that Python and this toolkit share one copy.
 *
 * <p>A cached file is used without network access. Every file, cached or downloaded, is checked the way
 * {@code torch.hub} checks it: the hex digits after the last {@code -} of the file name are a prefix of the file's
 * SHA-256. A download goes to a temporary file in the cache directory and is renamed into place only after the hash
 * matched, so an interrupted or corrupted download never poses as the real file.
 */
public final class TorchvisionWeights {
    /** The prefix of a source naming torchvision weights. */
    public static final String SCHEME = "torchvision:";
    /** Where torchvision publishes its weights. */
    public static final URI DEFAULT_BASE_URL = URI.create("https://download.pytorch.org/models/");

    /**
     * One entry of torchvision's weight tables: the file (with torch.hub's SHA-256 prefix) and the eval transform the
     * weights were published with ({@code ImageClassification(crop_size, resize_size, interpolation)}, ImageNet
     * mean and std).
     */
    public record Entry(String name, String file, int resizeSize, int cropSize, String interpolation) {
        /** The architecture part of the name ({@code resnet50} for {@code resnet50:IMAGENET1K_V2}). */
        public String arch() {
            int colon = name.indexOf(':');
            return colon < 0 ? name : name.substring(0, colon);
        }
    }

    /**
     * Entries by name, as torchvision 0.14's {@code models/*.py} list them: the bare name is IMAGENET1K_V1 (what
     * {@code pretrained=True} loads); {@code :IMAGENET1K_V2} names the newer recipe where there is one. Read from
     * {@code torchvision-weights.properties}, which a test checks against Debian's torchvision.
     */
    private static final Map<String, Entry> FILES = loadTable();

    private static Map<String, Entry> loadTable() {
        Map<String, Entry> out = new TreeMap<>();
        try (InputStream in = TorchvisionWeights.class.getResourceAsStream("torchvision-weights.properties")) {
            if (in == null) {
                throw new IllegalStateException("torchvision-weights.properties missing from the jar");
            }
            for (String line : new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).split("\n")) {
                line = line.strip();
                if (line.isEmpty() || line.startsWith("#")) {
                    continue;
                }
                String[] kv = line.split("\\s*=\\s*", 2);
                String[] f = kv[1].split("\\s+");
                out.put(kv[0], new Entry(kv[0], f[0], Integer.parseInt(f[1]), Integer.parseInt(f[2]), f[3]));
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return java.util.Collections.unmodifiableMap(out);
    }

    /** The table entry for {@code torchvision:<name>} or {@code <name>}, if torchvision publishes such weights. */
    public static java.util.Optional<Entry> entry(String source) {
        String model = source.startsWith(SCHEME) ? source.substring(SCHEME.length()) : source;
        return java.util.Optional.ofNullable(FILES.get(model));
    }

    /** The entry whose file is named {@code fileName} ({@code mobilenet_v2-b0353104.pth}), if any. */
    public static java.util.Optional<Entry> entryForFile(String fileName) {
        return FILES.values().stream().filter(e -> e.file().equals(fileName)).findFirst();
    }

    /** System property that allows downloading weights missing from the cache (the CLI's {@code --download}). */
    public static final String DOWNLOAD_PROPERTY = "finetune.download";
    /** Environment variable with the same effect as {@link #DOWNLOAD_PROPERTY}. */
    public static final String DOWNLOAD_ENV = "FINETUNE_DOWNLOAD";
    /** System property naming another base URL (a mirror of download.pytorch.org/models/). */
    public static final String URL_PROPERTY = "finetune.torchvision.url";
    /** Environment variable with the same effect as {@link #URL_PROPERTY}. */
    public static final String URL_ENV = "FINETUNE_TORCHVISION_URL";

    /** torch.hub's rule: the hash prefix is the hex run after the last '-' of the name, before the extension. */
    private static final Pattern HASH_IN_NAME = Pattern.compile("-([0-9a-f]+)\\.[^-]*$");

    private final URI baseUrl;
    private final Path cacheDir;
    private final boolean offline;
    private final HttpClient client;

    /**
     * @param baseUrl the directory URL the files are under (a trailing {@code /} is added if missing)
     * @param cacheDir where the files are kept, normally {@code <torch home>/hub/checkpoints}
     * @param offline if true, never download: a file not in the cache is an error
     */
    public TorchvisionWeights(URI baseUrl, Path cacheDir, boolean offline) {
        String base = baseUrl.toString();
        this.baseUrl = URI.create(base.endsWith("/") ? base : base + "/");
        this.cacheDir = Objects.requireNonNull(cacheDir, "cacheDir");
        this.offline = offline;
        this.client = HttpClient.newBuilder()
                .followRedirects(HttpClient.Redirect.NORMAL)
                .connectTimeout(Duration.ofSeconds(30))
                .build();
    }

    /**
     * torchvision's URL (or the mirror in {@code finetune.torchvision.url} / {@code FINETUNE_TORCHVISION_URL}) and
     * PyTorch's cache directory. Never downloads unless the user allowed it: the system property
     * {@code finetune.download=true} (the CLI's {@code --download}) or {@code FINETUNE_DOWNLOAD=true}. The engine's own
     * offline switch ({@code ai.djl.offline}) is a separate matter and stays on.
     */
    public static TorchvisionWeights fromEnvironment() {
        boolean allowed = isTrue(System.getProperty(DOWNLOAD_PROPERTY)) || isTrue(System.getenv(DOWNLOAD_ENV));
        String url = System.getProperty(URL_PROPERTY, System.getenv(URL_ENV));
        URI base = url == null || url.isBlank() ? DEFAULT_BASE_URL : URI.create(url.trim());
        return new TorchvisionWeights(base, defaultCacheDir(), !allowed);
    }

    private static boolean isTrue(String v) {
        return v != null && (v.equalsIgnoreCase("true") || v.equals("1") || v.equalsIgnoreCase("yes"));
    }

    /** PyTorch's checkpoint cache for this user and environment, as {@code torch.hub.get_dir()} computes it. */
    public static Path defaultCacheDir() {
        return cacheDir(System.getenv(), System.getProperty("user.home"));
    }

    static Path cacheDir(Map<String, String> env, String userHome) {
        String torchHome = env.get("TORCH_HOME");
        Path home;
        if (torchHome != null && !torchHome.isEmpty()) {
            home = expandUser(torchHome, userHome);
        } else {
            String xdg = env.get("XDG_CACHE_HOME");
            Path cache = xdg != null && !xdg.isEmpty() ? expandUser(xdg, userHome) : Path.of(userHome, ".cache");
            home = cache.resolve("torch");
        }
        return home.resolve("hub").resolve("checkpoints");
    }

    private static Path expandUser(String path, String userHome) {
        if (path.equals("~")) {
            return Path.of(userHome);
        }
        return path.startsWith("~/") ? Path.of(userHome, path.substring(2)) : Path.of(path);
    }

    /** The model names {@code torchvision:<name>} accepts. */
    public static Set<String> models() {
        return FILES.keySet();
    }

    /** The cache directory this instance uses. */
    public Path cacheDir() {
        return cacheDir;
    }

    /**
     * The local file for {@code torchvision:<model>} (or just {@code <model>}), downloading it if needed.
     *
     * @throws FinetuneException {@link ErrorKind#CHECKPOINT} for an unknown model, {@link ErrorKind#DOWNLOAD} if the
     *     file cannot be fetched or fails its hash check
     */
    public Path resolve(String source) {
        String model = source.startsWith(SCHEME) ? source.substring(SCHEME.length()) : source;
        Entry entry = FILES.get(model);
        if (entry == null) {
            throw new FinetuneException(ErrorKind.CHECKPOINT, source + ": unknown torchvision weights; write "
                    + SCHEME + "ARCH for one of " + FILES.values().stream().map(Entry::arch).distinct().toList()
                    + ", or " + SCHEME + "ARCH:WEIGHTS for " + FILES.keySet().stream().filter(k -> k.contains(":"))
                            .toList());
        }
        return fetch(entry.file());
    }

    /**
     * The cached file {@code fileName}, downloaded from the base URL first if it is not cached. The name must carry
     * a SHA-256 prefix as torchvision's do ({@code resnet18-f37072fd.pth}).
     *
     * @throws FinetuneException {@link ErrorKind#DOWNLOAD} if the file cannot be fetched, offline mode forbids it,
     *     or the content does not match the hash prefix
     */
    public Path fetch(String fileName) {
        if (fileName.contains("/") || fileName.contains("\\") || fileName.startsWith(".")) {
            throw new IllegalArgumentException("not a plain file name: " + fileName);
        }
        String expected = hashPrefix(fileName);
        Path target = cacheDir.resolve(fileName);
        URI url = baseUrl.resolve(fileName);
        if (Files.isRegularFile(target)) {
            String actual = sha256(target);
            if (!actual.startsWith(expected)) {
                throw new FinetuneException(ErrorKind.DOWNLOAD, target + ": cached file has SHA-256 " + actual
                        + " but its name promises a hash starting with " + expected + "; it is corrupt or not the file"
                        + " published at " + url + ". Delete it to download it again");
            }
            return target;
        }
        if (offline) {
            throw new FinetuneException(ErrorKind.DOWNLOAD, fileName + " is not in the cache " + cacheDir
                    + " and downloading is off. Allow it with --download (or FINETUNE_DOWNLOAD=true), or download "
                    + url + " elsewhere and place it at " + target);
        }
        try {
            Files.createDirectories(cacheDir);
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot create the weights cache " + cacheDir + ": " + e, e);
        }
        AtomicFiles.write(target, out -> {
            MessageDigest digest = newSha256();
            try (InputStream in = open(url, target)) {
                byte[] buf = new byte[1 << 16];
                int n;
                while ((n = readFrom(in, buf, url, target)) >= 0) {
                    digest.update(buf, 0, n);
                    out.write(buf, 0, n);
                }
            }
            String actual = HexFormat.of().formatHex(digest.digest());
            if (!actual.startsWith(expected)) {
                // Thrown inside the write, so AtomicFiles deletes the temporary file and nothing reaches the cache.
                throw new FinetuneException(ErrorKind.DOWNLOAD, "download of " + url + " does not match its published"
                        + " hash: expected SHA-256 starting with " + expected + ", got " + actual + "; the file was"
                        + " deleted. Retry, or download it yourself and place it at " + target);
            }
        });
        return target;
    }

    /**
     * torchvision publishes no checksum file: the only reference is the first hex digits of the SHA-256 embedded in
     * the file name, which torch.hub's {@code check_hash} compares.
     */
    static String hashPrefix(String fileName) {
        Matcher m = HASH_IN_NAME.matcher(fileName);
        if (!m.find()) {
            throw new IllegalArgumentException(
                    "file name " + fileName + " carries no SHA-256 prefix (name-<hex>.<ext>), so it cannot be verified");
        }
        return m.group(1);
    }

    private InputStream open(URI url, Path target) {
        HttpRequest request = HttpRequest.newBuilder(url).GET().build();
        HttpResponse<InputStream> response;
        try {
            response = client.send(request, HttpResponse.BodyHandlers.ofInputStream());
        } catch (IOException e) {
            throw networkFailure(url, target, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new FinetuneException(ErrorKind.INTERRUPTED, "download of " + url + " interrupted", e);
        }
        if (response.statusCode() != 200) {
            try {
                response.body().close();
            } catch (IOException e) {
                // the status is the error worth reporting
            }
            throw new FinetuneException(ErrorKind.DOWNLOAD, "cannot download " + url + ": HTTP "
                    + response.statusCode() + ". " + manualPlacement(url, target));
        }
        return response.body();
    }

    private static int readFrom(InputStream in, byte[] buf, URI url, Path target) {
        try {
            return in.read(buf);
        } catch (IOException e) {
            throw networkFailure(url, target, e);
        }
    }

    /** Network errors are DOWNLOAD errors, not the OUTPUT errors AtomicFiles makes of IOExceptions. */
    private static FinetuneException networkFailure(URI url, Path target, IOException e) {
        String cause = e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
        return new FinetuneException(ErrorKind.DOWNLOAD, "cannot download " + url + ": " + cause + ". "
                + manualPlacement(url, target), e);
    }

    private static String manualPlacement(URI url, Path target) {
        return "Without network access, download it elsewhere and place it at " + target
                + " (PyTorch's own cache; set TORCH_HOME to use another directory)";
    }

    private static String sha256(Path file) {
        MessageDigest digest = newSha256();
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 16];
            int n;
            while ((n = in.read(buf)) >= 0) {
                digest.update(buf, 0, n);
            }
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot read: " + e.getMessage(), e);
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    private static MessageDigest newSha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform provides SHA-256", e);
        }
    }
}
