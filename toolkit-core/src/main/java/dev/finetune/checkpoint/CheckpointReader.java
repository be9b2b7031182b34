package dev.finetune.checkpoint;

import java.nio.file.Path;

/**
 * Reads one checkpoint format into engine-independent {@link HostTensor}s. Readers only build data: nothing in a file
 * is ever executed, and every size a file claims is checked against the file before memory is allocated for it.
 */
public interface CheckpointReader {
    /**
     * Reads all tensors of {@code file}.
     *
     * @throws CheckpointException naming the file and the problem if it is malformed, truncated or unsafe
     */
    Checkpoint read(Path file);
}
