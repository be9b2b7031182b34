package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code ./finetune} launcher: the engine stays offline, the user's Java options win, and torchvision weights are
 * downloaded only when allowed ({@code --download} or {@code FINETUNE_DOWNLOAD=true}) — checked against a loopback
 * server standing in for download.pytorch.org.
 */
class LauncherTest {
    @TempDir
    Path tmp;

    private HttpServer server;
    private final List<String> requests = new CopyOnWriteArrayList<>();
    private String base;
    private Path root;

    @BeforeEach
    void setUp() throws Exception {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/models/", exchange -> {
            requests.add(exchange.getRequestURI().getPath());
            byte[] body = "these are not resnet18's weights".getBytes();
            exchange.sendResponseHeaders(200, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
            exchange.close();
        });
        server.start();
        base = "http://127.0.0.1:" + server.getAddress().getPort() + "/models/";
        // A copy of the launcher over the built CLI: it finds its stamp fresh and runs without building.
        root = Files.createDirectories(tmp.resolve("repo"));
        Path target = Files.createDirectories(root.resolve("toolkit-cli/target"));
        Path built = Cli.repo().resolve("toolkit-cli/target");
        Files.createSymbolicLink(target.resolve("classes"), built.resolve("classes"));
        Files.createSymbolicLink(target.resolve("lib"), built.resolve("lib"));
        Files.writeString(target.resolve(".built"), "");
        Files.copy(Cli.repo().resolve("finetune"), root.resolve("finetune"));
        root.resolve("finetune").toFile().setExecutable(true);
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    private Cli.Result launch(Map<String, String> env, String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of(root.resolve("finetune").toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("TORCH_HOME", tmp.resolve("torch").toString());
        pb.environment().put("FINETUNE_TORCHVISION_URL", base);
        pb.environment().remove("FINETUNE_DOWNLOAD");
        pb.environment().keySet().removeIf(k -> k.startsWith("MALLOC_") || k.startsWith("FINETUNE_MALLOC")
                || k.equals("GLIBC_TUNABLES") || k.equals("LD_PRELOAD") || k.startsWith("TCMALLOC_")
                || k.equals("FINETUNE_TCMALLOC_DIRS"));
        pb.environment().put("PATH", Path.of(System.getProperty("java.home"), "bin") + ":"
                + System.getenv("PATH"));
        pb.environment().putAll(env);
        Path out = tmp.resolve("out.txt");
        Path err = tmp.resolve("err.txt");
        Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "launcher did not finish");
        // stderr passes through the launcher's filter process, which may write its last lines just after java ends.
        long size = -1;
        for (int i = 0; i < 50 && size != Files.size(err); i++) {
            size = Files.size(err);
            Thread.sleep(100);
        }
        return new Cli.Result(p.exitValue(), Files.readString(out), Files.readString(err));
    }

    @Test
    void downloadsOnlyWhenAllowed() throws Exception {
        Cli.Result off = launch(Map.of(), "checkpoint", "inspect", "torchvision:resnet18");
        assertEquals(8, off.code(), off.err());
        assertTrue(off.err().contains("downloading is off. Allow it with --download"), off.err());
        assertTrue(requests.isEmpty(), "nothing fetched without permission: " + requests);

        for (Cli.Result allowed : List.of(
                launch(Map.of(), "checkpoint", "inspect", "torchvision:resnet18", "--download"),
                launch(Map.of("FINETUNE_DOWNLOAD", "true"), "checkpoint", "inspect", "torchvision:resnet18"))) {
            assertEquals(8, allowed.code(), allowed.err());
            assertTrue(allowed.err().contains("does not match its published hash: expected SHA-256 starting with"
                    + " f37072fd"), allowed.err());
        }
        assertEquals(List.of("/models/resnet18-f37072fd.pth", "/models/resnet18-f37072fd.pth"), requests);
        try (var s = Files.list(tmp.resolve("torch/hub/checkpoints"))) {
            assertEquals(0, s.count(), "a file failing its hash never reaches the cache");
        }
    }

    @Test
    void libtorchWarningsNobodyCanActOnAreDropped() throws Exception {
        String[] predict = {"predict", "--checkpoint", Cli.repo().resolve("models/resnet18-fmnist-a.safetensors")
                .toString(), Cli.repo().resolve("data/fashion-mnist-b/val/bag/00018.png").toString()};
        Cli.Result quiet = launch(Map.of(), predict);
        assertEquals(0, quiet.code(), quiet.err());
        assertTrue(quiet.out().contains("%"), quiet.out());
        // predict ran on tcmalloc where the system has it, else under FINETUNE_MALLOC=inference (and its malloc_trim
        // after the guard's first batches): where blocks lie changes, no value does.
        Cli.Result glibc = launch(Map.of("FINETUNE_MALLOC", "glibc"), predict);
        assertEquals(0, glibc.code(), glibc.err());
        assertEquals(withoutPeakMemory(glibc.out()), withoutPeakMemory(quiet.out()));
        assertTrue(quiet.err().lines().noneMatch(l -> l.startsWith("[W")), "no libtorch warning lines:\n" + quiet.err());

        // The filter itself, on the lines libtorch prints (a stand-in java prints them): dropped unless asked for.
        Path bin = Files.createDirectories(tmp.resolve("fakebin"));
        Path fake = bin.resolve("java");
        Files.writeString(fake, "#!/bin/sh\n"
                + "echo '[W1202 20:35:35.168985349 NNPACK.cpp:57] Could not initialize NNPACK! Reason: Unsupported"
                + " hardware.' >&2\n"
                + "echo '[W1202 20:35:35.168985349 LegacyTypeDispatch.h:74] Warning: AutoNonVariableTypeMode is"
                + " deprecated' >&2\n"
                + "echo 'error: a real error stays' >&2\n");
        fake.toFile().setExecutable(true);
        Map<String, String> fakeJava = Map.of("PATH", bin + ":" + System.getenv("PATH"));
        Cli.Result filtered = launch(fakeJava, "--version");
        assertEquals("error: a real error stays\n", filtered.err());
        Map<String, String> shown = new java.util.HashMap<>(fakeJava);
        shown.put("FINETUNE_NATIVE_WARNINGS", "1");
        assertTrue(launch(shown, "--version").err().contains("Could not initialize NNPACK"));
    }

    @Test
    void mallocPoliciesAreAppliedOrRefusedByName() throws Exception {
        // A stand-in java prints the malloc settings it was started with.
        String path = standInJava("envbin", "env | grep -E '^(MALLOC_|GLIBC_TUNABLES|FINETUNE_MALLOC_SET)' | sort");

        Cli.Result none = launch(noTcmalloc(path), "--version");
        assertEquals(0, none.code(), none.err());
        assertEquals("", none.out(), "glibc's defaults unless asked, where the system has no tcmalloc");
        assertEquals("", launch(Map.of("PATH", path, "FINETUNE_MALLOC", "glibc"), "--version").out(),
                "and when asked by name");

        // lean-steps: huge pages for glibc's own mappings where the kernel offers transparent huge pages; the
        // threshold is decided per training step in the JVM (MallocPolicy).
        String thp;
        try {
            thp = Files.readString(Path.of("/sys/kernel/mm/transparent_hugepage/enabled"));
        } catch (java.io.IOException e) {
            thp = "unknown";
        }
        Cli.Result steps = launch(Map.of("PATH", path, "FINETUNE_MALLOC", "lean-steps"), "--version");
        assertEquals(0, steps.code(), steps.err());
        assertEquals("FINETUNE_MALLOC_SET=GLIBC_TUNABLES\nGLIBC_TUNABLES=glibc.malloc.hugetlb=1\n", steps.out());
        assertEquals(thp.contains("[always]") || thp.contains("[madvise]"),
                !steps.err().contains("without transparent huge pages"), "THP: " + thp.trim() + "; " + steps.err());

        Cli.Result lean = launch(Map.of("PATH", path, "FINETUNE_MALLOC", "lean"), "--version");
        assertEquals(0, lean.code(), lean.err());
        assertEquals("FINETUNE_MALLOC_SET=MALLOC_MMAP_THRESHOLD_ GLIBC_TUNABLES\n"
                + "GLIBC_TUNABLES=glibc.malloc.hugetlb=1\nMALLOC_MMAP_THRESHOLD_=8388608\n", lean.out());

        Cli.Result keep = launch(Map.of("PATH", path, "FINETUNE_MALLOC", "keep"), "--version");
        assertTrue(keep.out().contains("MALLOC_MMAP_MAX_=0\n"), keep.out());

        Cli.Result own = launch(Map.of("PATH", path, "FINETUNE_MALLOC", "lean", "MALLOC_ARENA_MAX", "2"), "--version");
        assertEquals("MALLOC_ARENA_MAX=2\n", own.out(), "the user's own setting is left alone");
        assertTrue(own.err().contains("FINETUNE_MALLOC=lean not applied: LD_PRELOAD, MALLOC_* or GLIBC_TUNABLES is"
                + " already set"),
                own.err());

        Cli.Result typo = launch(Map.of("PATH", path, "FINETUNE_MALLOC", "lena"), "--version");
        assertEquals(2, typo.code(), "a usage error");
        assertTrue(typo.err().contains("FINETUNE_MALLOC=lena is not a malloc policy; use tcmalloc, inference, keep,"
                + " lean, lean-steps, glibc for glibc's defaults, or unset it"), typo.err());
        assertEquals("", typo.out(), "java never started");
    }

    @Test
    void evaluateAndPredictRunUnderTheInferencePolicyUnlessAskedOtherwise() throws Exception {
        String path = standInJava("envbin2", "env | grep -E '^(MALLOC_|GLIBC_TUNABLES|FINETUNE_MALLOC_SET)' | sort");
        // The launcher's variables are the ones the benchmark gives its default-inference workloads.
        StringBuilder expected = new StringBuilder("FINETUNE_MALLOC_SET=MALLOC_ARENA_MAX MALLOC_MMAP_MAX_"
                + " MALLOC_TRIM_THRESHOLD_\n");
        new java.util.TreeMap<>(dev.finetune.engine.MallocPolicy.INFERENCE_VARIABLES)
                .forEach((k, v) -> expected.append(k).append('=').append(v).append('\n'));
        for (String command : List.of("evaluate", "predict")) {
            Cli.Result r = launch(noTcmalloc(path), command, "--checkpoint", "x");
            assertEquals(0, r.code(), r.err());
            assertEquals(expected.toString(), r.out(), command);
            assertEquals(expected.toString(), launch(noTcmalloc(path), "--download", command).out(),
                    "found after a global option");
            assertEquals(expected.toString(), launch(noTcmalloc(path, "FINETUNE_MALLOC", "inference"),
                    command).out(), "and by name");
            assertEquals("", launch(noTcmalloc(path), command, "--no-fold-bn", "x").out(),
                    "the plain network keeps glibc's defaults (its peak rose 30-50 % with the policy)");
            assertEquals("", launch(Map.of("PATH", path, "FINETUNE_MALLOC", "glibc"), command).out(), "when asked");
            Cli.Result own = launch(noTcmalloc(path, "MALLOC_ARENA_MAX", "4"), command);
            assertEquals("MALLOC_ARENA_MAX=4\n", own.out(), "the user's own setting wins");
            assertEquals("", own.err(), "without a word: the user asked the launcher for nothing");
        }
        for (String other : List.of("train", "experiment", "bench", "features")) {
            assertEquals("", launch(noTcmalloc(path), other, "predict").out(),
                    other + " keeps glibc's defaults without tcmalloc");
        }
    }

    /** The stand-in's {@code PATH}, and a system without tcmalloc (the launcher searches an empty folder). */
    private Map<String, String> noTcmalloc(String path, String... more) throws Exception {
        Map<String, String> env = new java.util.HashMap<>(Map.of("PATH", path, "FINETUNE_TCMALLOC_DIRS",
                Files.createDirectories(tmp.resolve("nolib")).toString()));
        for (int i = 0; i < more.length; i += 2) {
            env.put(more[i], more[i + 1]);
        }
        return env;
    }

    @Test
    void everyCommandRunsOnTcmallocWhereTheSystemHasIt() throws Exception {
        String path = standInJava("envbin3", "env | grep -E '^(MALLOC_|GLIBC_TUNABLES|FINETUNE_MALLOC_SET|LD_PRELOAD"
                + "|TCMALLOC_)' | sort");
        // A folder holding the library (the system's own where it is installed; a stand-in file otherwise: only the
        // launcher's variables are looked at, by a stand-in java).
        Path lib = Files.createDirectories(tmp.resolve("lib"));
        Path system = Path.of("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4");
        Path tc = lib.resolve("libtcmalloc_minimal.so.4");
        if (Files.isReadable(system)) {
            Files.createSymbolicLink(tc, system);
        } else {
            Files.writeString(tc, "");
        }
        String expected = "FINETUNE_MALLOC_SET=LD_PRELOAD TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD\nLD_PRELOAD=" + tc
                + "\nTCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD=1099511627776\n";
        Map<String, String> found = Map.of("PATH", path, "FINETUNE_TCMALLOC_DIRS", tmp.resolve("nolib") + ":" + lib);
        for (String command : List.of("train", "evaluate", "predict", "experiment", "bench", "features")) {
            Cli.Result r = launch(found, command, "x");
            assertEquals(0, r.code(), r.err());
            assertEquals(expected, r.out(), command);
        }
        assertEquals(expected, launch(found, "predict", "--no-fold-bn", "x").out(), "the plain network too");
        Map<String, String> named = new java.util.HashMap<>(found);
        named.put("FINETUNE_MALLOC", "tcmalloc");
        assertEquals(expected, launch(named, "train").out(), "and by name");

        Map<String, String> glibc = new java.util.HashMap<>(found);
        glibc.put("FINETUNE_MALLOC", "glibc");
        assertEquals("", launch(glibc, "train").out(), "glibc's own malloc when asked");
        Map<String, String> inference = new java.util.HashMap<>(found);
        inference.put("FINETUNE_MALLOC", "inference");
        assertTrue(launch(inference, "predict").out().contains("MALLOC_ARENA_MAX=1\n"), "another policy by name");

        Map<String, String> own = new java.util.HashMap<>(found);
        own.put("LD_PRELOAD", "/opt/mine.so");
        Cli.Result mine = launch(own, "train");
        assertEquals("LD_PRELOAD=/opt/mine.so\n", mine.out(), "the user's own preload wins");
        Map<String, String> ownMalloc = new java.util.HashMap<>(found);
        ownMalloc.put("MALLOC_ARENA_MAX", "2");
        assertEquals("MALLOC_ARENA_MAX=2\n", launch(ownMalloc, "train").out(), "and their glibc settings");

        Map<String, String> missing = new java.util.HashMap<>(named);
        missing.put("FINETUNE_TCMALLOC_DIRS", tmp.resolve("nolib").toString());
        Cli.Result none = launch(missing, "train");
        assertEquals(2, none.code(), "asked for by name and not there: a usage error");
        assertTrue(none.err().contains("FINETUNE_MALLOC=tcmalloc: no libtcmalloc_minimal.so.4 or libtcmalloc.so.4"
                + " found in " + tmp.resolve("nolib") + "; install it (Debian/Ubuntu: apt-get install"
                + " libtcmalloc-minimal4) or unset FINETUNE_MALLOC"), none.err());
        assertEquals("", none.out(), "java never started");
    }

    @Test
    void theJvmGivesFreeHeapBackUnlessTheUserSetsTheirOwnOptions() throws Exception {
        // A stand-in java prints the options it was started with.
        String path = standInJava("argsbin", "for a in \"$@\"; do case \"$a\" in -X*|-D*) echo \"$a\";; esac; done");

        Cli.Result defaults = launch(Map.of("PATH", path), "--version");
        assertEquals(0, defaults.code(), defaults.err());
        assertEquals(List.of("-Dai.djl.offline=true", "-Xmx8g", "-XX:GCTimeRatio=4", "-XX:MinHeapFreeRatio=10",
                "-XX:MaxHeapFreeRatio=30", "-XX:NewSize=48m", "-XX:MaxNewSize=48m"), defaults.out().lines().toList());
        // Children (experiment runs, benchmark workloads) inherit every one of them: ChildJvmOptions passes -D, -Xmx,
        // -Xms and -XX: options (hence the young generation as NewSize/MaxNewSize, not -Xmn).
        assertTrue(defaults.out().lines().allMatch(a -> a.startsWith("-D") || a.startsWith("-Xmx")
                || a.startsWith("-XX:")), defaults.out());

        Cli.Result own = launch(Map.of("PATH", path, "FINETUNE_JAVA_OPTS", "-Xmx2g -Dx=1"), "--version");
        assertEquals(List.of("-Dai.djl.offline=true", "-Xmx2g", "-Dx=1"), own.out().lines().toList(),
                "the user's options replace the defaults");
    }

    /** {@code predict}'s output without its peak-memory line, the one line the malloc settings may change. */
    private static String withoutPeakMemory(String out) {
        return out.lines().filter(l -> !l.startsWith("peak memory (RSS)")).collect(
                java.util.stream.Collectors.joining("\n"));
    }

    /** A PATH whose first directory holds a {@code java} that runs {@code script} (sh) instead. */
    private String standInJava(String dir, String script) throws Exception {
        Path bin = Files.createDirectories(tmp.resolve(dir));
        Path fake = bin.resolve("java");
        Files.writeString(fake, "#!/bin/sh\n" + script + "\n");
        fake.toFile().setExecutable(true);
        return bin + ":" + System.getenv("PATH");
    }

    @Test
    void userJavaOptionsComeAfterTheDefaults() throws Exception {
        // That the JVM starts with them is shown by downloadsOnlyWhenAllowed; here, their place on the command line.
        String script = Files.readString(root.resolve("finetune"));
        int engineDefault = script.indexOf("-Dai.djl.offline=true");
        int userOpts = script.indexOf("${FINETUNE_JAVA_OPTS");
        assertTrue(engineDefault >= 0 && userOpts > engineDefault, "java keeps the last -D: user options go last");
    }
}
