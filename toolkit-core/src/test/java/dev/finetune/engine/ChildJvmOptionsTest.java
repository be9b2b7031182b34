package dev.finetune.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

class ChildJvmOptionsTest {
    @Test
    void heapGcAndPropertiesPassInOrderAgentsAndDebugDoNot() {
        List<String> parent = List.of("-Dai.djl.offline=true", "-Xmx8g", "-XX:GCTimeRatio=4",
                "-agentlib:jdwp=transport=dt_socket,server=y", "-XX:MaxHeapFreeRatio=30", "--add-opens=java.base/x=y",
                "-Dai.djl.pytorch.num_threads=1", "-ea");
        assertEquals(List.of("-Dai.djl.offline=true", "-Xmx8g", "-XX:GCTimeRatio=4", "-XX:MaxHeapFreeRatio=30",
                "-Dai.djl.pytorch.num_threads=1"), ChildJvmOptions.select(parent, a -> false));
        assertEquals(List.of("-Dai.djl.offline=true", "-Xmx8g", "-XX:GCTimeRatio=4", "-XX:MaxHeapFreeRatio=30"),
                ChildJvmOptions.select(parent, a -> a.startsWith("-Dai.djl.pytorch.num_threads=")));
    }

    @Test
    void aParentWithoutHeapLimitOrOfflineModeGivesTheLaunchersDefaults() {
        assertEquals(List.of("-Dai.djl.offline=true", "-Xmx8g", "-XX:+UseG1GC"),
                ChildJvmOptions.select(List.of("-XX:+UseG1GC"), a -> false));
        assertEquals(List.of("-Dai.djl.offline=false", "-Xmx2g"),
                ChildJvmOptions.select(List.of("-Dai.djl.offline=false", "-Xmx2g"), a -> false));
    }
}
