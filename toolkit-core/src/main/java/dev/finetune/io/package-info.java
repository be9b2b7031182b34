/**
 * File output that never leaves a half-written file behind.
 *
 * <p>Checkpoints, downloaded weights and run metadata are written through {@link dev.finetune.io.AtomicFiles}: a
 * crash, a full disk or an exception in the middle of a write leaves either the previous file or the complete new
 * one, never a truncated file that a later run would try to load.
 */
package dev.finetune.io;
