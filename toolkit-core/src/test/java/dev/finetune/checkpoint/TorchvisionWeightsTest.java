package dev.finetune.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Downloads from a local HTTP server on loopback, into a temporary cache, checked like torch.hub checks. */
class TorchvisionWeightsTest {
    @TempDir
    Path cache;

    HttpServer server;
    final Map<String, byte[]> served = new ConcurrentHashMap<>();
    final AtomicInteger requests = new AtomicInteger();
    URI base;

    @BeforeEach
    void startServer() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/models/", exchange -> {
            requests.incrementAndGet();
            String name = exchange.getRequestURI().getPath().substring("/models/".length());
            byte[] body = served.get(name);
            if (body == null) {
                exchange.sendResponseHeaders(404, -1);
            } else {
                exchange.sendResponseHeaders(200, body.length);
                try (OutputStream out = exchange.getResponseBody()) {
                    out.write(body);
                }
            }
            exchange.close();
        });
        server.start();
        base = URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/models/");
    }

    @AfterEach
    void stopServer() {
        server.stop(0);
    }

    /** Some weights and the torchvision-style name carrying the prefix of their SHA-256. */
    private static Map.Entry<String, byte[]> weightsFile(Path scratch) throws IOException {
        Path file = scratch.resolve("tiny.pth");
        PthWriter.write(file, SafetensorsTest.sample());
        byte[] bytes = Files.readAllBytes(file);
        Files.delete(file);
        return Map.entry("tiny-" + TestFiles.sha256(bytes).substring(0, 8) + ".pth", bytes);
    }

    @Test
    void downloadsVerifiesAndThenReusesTheCachedFile() throws IOException {
        Map.Entry<String, byte[]> weights = weightsFile(cache);
        served.put(weights.getKey(), weights.getValue());
        Path dir = cache.resolve("hub").resolve("checkpoints");

        Path file = new TorchvisionWeights(base, dir, false).fetch(weights.getKey());

        assertEquals(dir.resolve(weights.getKey()), file);
        assertArrayEquals(weights.getValue(), Files.readAllBytes(file));
        assertEquals(0, TestFiles.strayFiles(dir, weights.getKey()), "no temporary file may remain");
        assertEquals(5, new PthReader().read(file).tensors().size());

        // Offline and with the server gone, the cached file is used as is.
        server.stop(0);
        assertEquals(file, new TorchvisionWeights(base, dir, true).fetch(weights.getKey()));
        assertEquals(1, requests.get());
    }

    @Test
    void corruptedDownloadIsDeletedAndReported() throws IOException {
        Map.Entry<String, byte[]> weights = weightsFile(cache);
        byte[] corrupted = weights.getValue().clone();
        corrupted[corrupted.length / 2] ^= 1;
        served.put(weights.getKey(), corrupted);
        Path dir = cache.resolve("downloads");

        FinetuneException e = assertThrows(FinetuneException.class,
                () -> new TorchvisionWeights(base, dir, false).fetch(weights.getKey()));

        assertEquals(ErrorKind.DOWNLOAD, e.kind());
        String expectedPrefix = weights.getKey().substring(5, 13);
        assertTrue(e.getMessage().contains(base.resolve(weights.getKey()).toString()), e.getMessage());
        assertTrue(e.getMessage().contains("expected SHA-256 starting with " + expectedPrefix), e.getMessage());
        assertTrue(e.getMessage().contains("got " + TestFiles.sha256(corrupted)), e.getMessage());
        assertFalse(Files.exists(dir.resolve(weights.getKey())));
        assertEquals(0, TestFiles.strayFiles(dir), "the partial download must be deleted");
    }

    @Test
    void networkFailureSaysWhereToPlaceTheFile() throws IOException {
        server.stop(0); // nothing listens on the port any more
        Path dir = cache.resolve("c");

        FinetuneException e = assertThrows(FinetuneException.class,
                () -> new TorchvisionWeights(base, dir, false).fetch("resnet18-f37072fd.pth"));

        assertEquals(ErrorKind.DOWNLOAD, e.kind());
        assertTrue(e.getMessage().startsWith("cannot download " + base + "resnet18-f37072fd.pth"), e.getMessage());
        assertTrue(e.getMessage().contains("place it at " + dir.resolve("resnet18-f37072fd.pth")), e.getMessage());
        assertEquals(0, TestFiles.strayFiles(dir));
    }

    @Test
    void httpErrorIsADownloadError() throws IOException {
        FinetuneException e = assertThrows(FinetuneException.class,
                () -> new TorchvisionWeights(base, cache, false).fetch("missing-0123abcd.pth"));
        assertEquals(ErrorKind.DOWNLOAD, e.kind());
        assertTrue(e.getMessage().contains("HTTP 404"), e.getMessage());
        assertEquals(0, TestFiles.strayFiles(cache));
    }

    @Test
    void offlineWithoutCachedFile() {
        FinetuneException e = assertThrows(FinetuneException.class,
                () -> new TorchvisionWeights(base, cache, true).resolve("torchvision:resnet18"));
        assertEquals(ErrorKind.DOWNLOAD, e.kind());
        assertTrue(e.getMessage().contains("downloading is off. Allow it with --download"), e.getMessage());
        assertTrue(e.getMessage().contains("place it at " + cache.resolve("resnet18-f37072fd.pth")), e.getMessage());
        assertEquals(0, requests.get());
    }

    @Test
    void corruptCachedFileIsNotUsed() throws IOException {
        Files.writeString(cache.resolve("resnet18-f37072fd.pth"), "not the weights");
        FinetuneException e = assertThrows(FinetuneException.class,
                () -> new TorchvisionWeights(base, cache, true).resolve("torchvision:resnet18"));
        assertEquals(ErrorKind.DOWNLOAD, e.kind());
        assertTrue(e.getMessage().contains("hash starting with f37072fd"), e.getMessage());
        assertTrue(e.getMessage().contains("Delete it"), e.getMessage());
    }

    @Test
    void cacheDirectoryFollowsTorchHub() {
        assertEquals(Path.of("/t/hub/checkpoints"),
                TorchvisionWeights.cacheDir(Map.of("TORCH_HOME", "/t", "XDG_CACHE_HOME", "/x"), "/home/u"));
        assertEquals(Path.of("/x/torch/hub/checkpoints"),
                TorchvisionWeights.cacheDir(Map.of("XDG_CACHE_HOME", "/x"), "/home/u"));
        assertEquals(Path.of("/home/u/.cache/torch/hub/checkpoints"), TorchvisionWeights.cacheDir(Map.of(), "/home/u"));
        assertEquals(Path.of("/home/u/th/hub/checkpoints"),
                TorchvisionWeights.cacheDir(Map.of("TORCH_HOME", "~/th"), "/home/u"));
    }

    @Test
    void hashPrefixComesFromTheFileName() {
        assertEquals("f37072fd", TorchvisionWeights.hashPrefix("resnet18-f37072fd.pth"));
        assertEquals("0676ba61", TorchvisionWeights.hashPrefix("resnet-50-0676ba61.pth"));
        assertThrows(IllegalArgumentException.class, () -> TorchvisionWeights.hashPrefix("weights.pth"));
    }

    @Test
    void knowsTheResNetFilesOfTorchvision014() {
        // File names as torchvision 0.14's models/resnet.py lists them (IMAGENET1K_V1 unless named).
        Map<String, String> expected = Map.of(
                "torchvision:resnet18", "resnet18-f37072fd.pth",
                "torchvision:resnet34", "resnet34-b627a593.pth",
                "torchvision:resnet50", "resnet50-0676ba61.pth",
                "torchvision:resnet50:IMAGENET1K_V2", "resnet50-11ad3fa6.pth");
        expected.forEach((source, file) -> {
            FinetuneException e = assertThrows(FinetuneException.class,
                    () -> new TorchvisionWeights(base, cache, true).resolve(source));
            assertTrue(e.getMessage().startsWith(file + " is not in the cache"), e.getMessage());
        });
        assertEquals(0, requests.get());
    }

    /** The shipped table is torchvision's own, for exactly the architectures the toolkit builds. */
    @Test
    void theWeightTableIsTorchvisionsForEveryArchitecture() throws Exception {
        String archs = String.join(",", dev.finetune.model.Architectures.names());
        String expected = dev.finetune.testing.TorchReference.runPython(
                dev.finetune.testing.TorchReference.repoRoot().resolve("scripts/reference/torchvision_weights.py")
                        .toString(), archs);
        StringBuilder ours = new StringBuilder();
        try (var in = TorchvisionWeights.class.getResourceAsStream("torchvision-weights.properties")) {
            for (String line : new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).split("\n")) {
                if (!line.isBlank() && !line.startsWith("#")) {
                    ours.append(line).append('\n');
                }
            }
        }
        assertEquals(expected, ours.toString(), "regenerate with scripts/reference/torchvision_weights.py " + archs);
        for (String arch : dev.finetune.model.Architectures.names()) {
            TorchvisionWeights.Entry e = TorchvisionWeights.entry("torchvision:" + arch).orElseThrow();
            assertEquals(arch, e.arch());
            assertTrue(e.file().startsWith(arch), e.file());
        }
        assertEquals(224, TorchvisionWeights.entry("mobilenet_v2:IMAGENET1K_V2").orElseThrow().cropSize());
        assertEquals(232, TorchvisionWeights.entry("mobilenet_v2:IMAGENET1K_V2").orElseThrow().resizeSize());
    }
}
