/**
 * The hardening suite: every reader of untrusted input ({@code .pth}, safetensors and finetune checkpoints, IDX
 * pairs, YAML configs and policies) fed hand-made hostile files and seeded random mutations of valid ones, plus the
 * code-execution tests of the checkpoint trust boundary. Each input must end in a successful read or a
 * {@link dev.finetune.FinetuneException} naming the file, within a time limit; the per-format counts printed by
 * these tests are quoted in SECURITY.md.
 */
package dev.finetune.fuzz;
