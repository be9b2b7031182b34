/** Experiment configs: immutable records bound from YAML with unknown keys rejected, --set edits, and errors that carry the YAML path. */
package dev.finetune.config;
