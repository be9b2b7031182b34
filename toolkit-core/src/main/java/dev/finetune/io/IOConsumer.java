package dev.finetune.io;

import java.io.IOException;

/**
 * A consumer that may throw {@link IOException}: the body of a write, which {@link AtomicFiles} turns into an
 * {@link dev.finetune.ErrorKind#OUTPUT} error naming the file.
 *
 * @param <T> what the body receives, usually an {@link java.io.OutputStream}
 */
@FunctionalInterface
public interface IOConsumer<T> {
    /** Consumes {@code value}, for example by writing to it. */
    void accept(T value) throws IOException;
}
